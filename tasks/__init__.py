"""Prefect tasks: thin wrappers around nas/ that add caching, retries, artifacts, W&B."""
