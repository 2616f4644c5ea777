# ~/.bash_logout
