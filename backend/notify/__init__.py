"""Notifications: an in-app inbox for everyone, WeChat subscribe messages where a grant allows."""
