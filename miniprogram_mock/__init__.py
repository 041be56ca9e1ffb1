"""Stand-ins for the outside world of the mini-program: a fake WeChat API server and a scripted phone."""
