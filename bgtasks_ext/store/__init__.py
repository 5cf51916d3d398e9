"""Stores: where task history lives (``sqlite`` by default, ``memory`` for tests)."""
