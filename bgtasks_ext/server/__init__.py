"""The Jupyter server extension: hosts the engine (REST and events come with issue #3)."""
