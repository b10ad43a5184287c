"""Prefect tasks: thin wrappers around nas/ that add caching, retries, artifacts, W&B.

Tasks that need TensorFlow import their nas/ module inside the task, so importing the
flows stays light and a fully cached pipeline run never loads TensorFlow."""
