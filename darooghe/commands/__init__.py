"""Subcommands of the `darooghe` CLI, one module each."""
