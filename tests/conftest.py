"""Loads pytest-jupyter for the whole suite (pytest only allows this at the top)."""

pytest_plugins = ["pytest_jupyter.jupyter_server"]
