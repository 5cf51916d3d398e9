"""Executors: where task code runs (``process``, ``thread``)."""
