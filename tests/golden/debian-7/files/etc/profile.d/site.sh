export SITE=dc1
