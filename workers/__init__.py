"""RQ job functions (thin: open an app context, call a service) and the worker entry point."""
