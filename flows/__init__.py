"""Prefect flows and the `nas` command line."""
