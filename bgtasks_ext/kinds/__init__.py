"""Built-in kinds. Each is also advertised under the ``bgtasks_ext.kinds`` entry point group.

This package registers the built-ins (``core`` knows no kind by name): the server
builds its registry with :func:`default_registry`.
"""

from ..core.registry import KindRegistry
from .code import code
from .count import count
from .notebook import notebook
from .sleep import sleep

BUILTIN = (code, count, notebook, sleep)


def default_registry() -> KindRegistry:
    """A registry with the built-in kinds and every entry point kind."""
    reg = KindRegistry()
    for obj in BUILTIN:  # also entry points, but a source checkout must work uninstalled
        reg.register(obj)
    reg.load_entry_points()
    return reg


__all__ = ["BUILTIN", "code", "count", "default_registry", "notebook", "sleep"]
