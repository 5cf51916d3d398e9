"""Built-in kinds. Each is also advertised under the ``bgtasks_ext.kinds`` entry point group."""

from .count import count
from .sleep import sleep

BUILTIN = (count, sleep)

__all__ = ["BUILTIN", "count", "sleep"]
