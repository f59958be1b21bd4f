"""Asset check modules; definitions.py lists the checks it registers."""
