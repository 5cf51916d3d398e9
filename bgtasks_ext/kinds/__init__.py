"""Built-in kinds. Each is also advertised under the ``bgtasks_ext.kinds`` entry point group."""

from .code import code
from .count import count
from .sleep import sleep

BUILTIN = (code, count, sleep)

__all__ = ["BUILTIN", "code", "count", "sleep"]
