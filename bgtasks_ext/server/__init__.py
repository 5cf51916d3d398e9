"""The Jupyter server extension: hosts the engine, serves REST and the events websocket."""
