"""Users, WeChat login, API tokens, and who may do what where."""
