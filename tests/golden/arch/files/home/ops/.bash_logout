#
# ~/.bash_logout
#
