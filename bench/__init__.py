"""Benchmarks: the API under gunicorn against a bare Flask baseline, driven by wrk (``python -m bench``)."""
