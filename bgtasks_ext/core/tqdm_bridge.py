"""tqdm bars inside a task report the task's progress, and leave one frame in its log.

People wrap loops in tqdm (``tqdm``, ``tqdm.auto``, ``trange``, pandas' ``progress_apply``)
long before they meet this package, so a bar that a task's code makes (in the thread that
runs the task) is tied to that task:

- each time the bar refreshes (tqdm does so at most every ``mininterval``, 0.1 s by default)
  it reports ``n``/``total``/``desc`` as the task's progress. With several open bars (nested
  loops) the outermost one (the lowest position, as tqdm lays them out) gives the numbers and
  its ``desc`` and postfix the message; inner bars add ``"desc n/total"`` to the message.
  A bar updated from threads the task started (a pool's workers) reports too, while the
  task runs;
- in the task's thread, the same call checks for a cancel request, so a tqdm loop raises
  ``TaskCancelled`` like ``track()`` does (tqdm's own ``finally`` closes the bar on the way
  out);
- a text bar that writes to the task's log (to ``sys.stderr``, tqdm's default, or
  ``sys.stdout``) draws nothing while it runs (a log cannot redraw a line, and nested bars
  move the cursor up) and writes its last frame once, as a line, when it closes
  (``leave=True``, tqdm's default): the log holds one frame per bar. A bar written to a file
  of the user's draws there as usual. A ``tqdm.notebook`` bar (what
  ``tqdm.auto`` gives in a kernel: a task of the ``kernel`` executor) is not displayed, since
  from a task's thread it would land in whatever cell runs at the moment; the task's own
  widget shows its progress, and its last frame goes to the log as text. Bars that draw
  elsewhere (rich, a GUI) draw as usual and report progress all the same.

A bar made with ``disable=True`` (or ``disable=None`` where the output is not a terminal,
as in a task) does nothing at all, so it reports nothing either.

:func:`install` runs once per process where tasks run (``run_attempt`` calls it) and never
imports tqdm: the classes are patched at once if tqdm is already imported, else by an import
hook when something imports ``tqdm.std`` (``tqdm.notebook``). Bars made outside a task (a kernel's foreground)
keep tqdm's behaviour: the patched methods step aside after one attribute lookup.
"""

from __future__ import annotations

import functools
import importlib.abc
import sys
import threading
from types import ModuleType
from typing import Any, Sequence

from . import context
from .context import TaskContext
from .errors import TaskCancelled

MODULE = "tqdm.std"
"""The module whose ``tqdm`` class every tqdm bar (auto, notebook, asyncio...) derives from."""
NOTEBOOK = "tqdm.notebook"
"""The module of the widget bar (``tqdm_notebook``), whose ``__init__`` displays it."""

_lock = threading.Lock()
_installed = False


def install() -> None:
    """Tie tqdm bars to the tasks that make them, in this process (idempotent, cheap)."""
    global _installed
    if _installed:
        return
    with _lock:
        if _installed:
            return
        # The finder stays: a module imported anew (a reload, sys.modules edited) is patched too.
        sys.meta_path.insert(0, _Finder())
        for name in (MODULE, NOTEBOOK):
            module = sys.modules.get(name)
            if module is not None:
                _patch(module)
        _installed = True


class _Finder(importlib.abc.MetaPathFinder):
    """Finds ``tqdm.std`` (``tqdm.notebook``) through the other finders and patches it once
    it is executed."""

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> Any:
        if fullname != MODULE and fullname != NOTEBOOK:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is None:
                continue
            if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                spec.loader = _Loader(spec.loader)
            return spec
        return None


class _Loader(importlib.abc.Loader):
    """The real loader of a tqdm module, then :func:`_patch`."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def create_module(self, spec: Any) -> ModuleType | None:
        return self.inner.create_module(spec)  # type: ignore[no-any-return]

    def exec_module(self, module: ModuleType) -> None:
        self.inner.exec_module(module)
        _patch(module)

    def __getattr__(self, name: str) -> Any:  # get_source, get_resource_reader...
        return getattr(self.inner, name)


def _patch(module: ModuleType) -> None:
    """Wrap ``__init__``, ``refresh``, ``close`` and ``clear`` of ``tqdm.std.tqdm``, or
    ``__init__`` of ``tqdm.notebook.tqdm_notebook``. Never raises: a tqdm this does not
    understand stays as it is, and imports as usual."""
    try:
        notebook = module.__name__ == NOTEBOOK
        cls = module.tqdm_notebook if notebook else module.tqdm
        if cls.__dict__.get("_bgtasks_patched"):
            return
        if notebook:
            _wrap_notebook(cls)
        else:
            _wrap(cls)
    except Exception:  # noqa: BLE001, S110 - an import of tqdm must never fail because of us
        pass


def _wrap_notebook(cls: Any) -> None:
    orig_init = cls.__init__

    @functools.wraps(orig_init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        hidden = context.current() is not None
        if hidden:
            kwargs["display"] = False  # the task's widget shows it; its last frame goes to the log
            self._bgtasks_hidden = True
        orig_init(self, *args, **kwargs)
        if hidden:
            self.displayed = True  # nor later, once a ``delay`` has passed

    cls.__init__ = __init__
    cls._bgtasks_patched = True


def _wrap(cls: Any) -> None:
    orig_init, orig_refresh, orig_close, orig_clear = cls.__init__, cls.refresh, cls.close, cls.clear
    text_display = cls.display

    @functools.wraps(orig_init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        ctx = context.current()
        if ctx is not None:
            # Before tqdm's __init__, which draws the first frame.
            self._bgtasks_ctx = ctx
            self._bgtasks_quiet = (type(self).display is text_display and not kwargs.get("gui")
                                   and _to_log(kwargs["file"] if "file" in kwargs else
                                               args[4] if len(args) > 4 else None))
        orig_init(self, *args, **kwargs)

    @functools.wraps(orig_refresh)
    def refresh(self: Any, *args: Any, **kwargs: Any) -> Any:
        ctx: TaskContext | None = self._bgtasks_ctx
        if ctx is None or self.disable:
            return orig_refresh(self, *args, **kwargs)
        if context.current() is ctx:
            _report(self, ctx, raising=True)
        elif ctx.bound():  # a thread the task started, tqdm's monitor: report, never raise there
            _report(self, ctx, raising=False)
        if self._bgtasks_quiet:
            return True
        return orig_refresh(self, *args, **kwargs)

    @functools.wraps(orig_close)
    def close(self: Any) -> Any:
        ctx: TaskContext | None = self._bgtasks_ctx
        if ctx is None or getattr(self, "disable", True):
            return orig_close(self)
        if ctx.bound():  # not a __del__ run after the task ended
            _report(self, ctx, raising=False, closing=True)
        quiet = self._bgtasks_quiet
        line = _last_frame(self) if quiet or self._bgtasks_hidden else None
        if quiet:
            self.sp = None  # tqdm's close then does its bookkeeping and draws nothing
        result = orig_close(self)
        if line:
            _write_line(self, line)
        return result

    @functools.wraps(orig_clear)
    def clear(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self._bgtasks_quiet:
            return None  # nothing was drawn (tqdm.write() clears every bar)
        return orig_clear(self, *args, **kwargs)

    cls._bgtasks_ctx = None
    cls._bgtasks_quiet = False
    cls._bgtasks_hidden = False
    cls.__init__, cls.refresh, cls.close, cls.clear = __init__, refresh, close, clear
    cls._bgtasks_patched = True


def _to_log(file: Any) -> bool:
    """Whether a bar's ``file`` is the task's log (the streams a task's output goes to)."""
    return file is None or any(file is f for f in (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__))


def _report(bar: Any, ctx: TaskContext, raising: bool, closing: bool = False) -> None:
    """Report the task's open bars as its progress: may raise TaskCancelled (``raising``).
    An inner bar that is ``closing`` leaves the message."""
    bars = _open_bars(bar, ctx)
    if closing and len(bars) > 1 and bars[0] is not bar:
        bars = [b for b in bars if b is not bar]
    outer = bars[0]
    parts = [_desc(outer), str(getattr(outer, "postfix", None) or "")]
    for inner in bars[1:]:
        done = _number(inner.n)
        parts.append(f"{_desc(inner)} {done}" + ("" if inner.total is None else f"/{_number(inner.total)}"))
    ctx.poll()  # a bar refreshes ten times a second at most: check every time
    try:
        ctx.progress(outer.n, outer.total, " · ".join(p for p in parts if p))
    except TaskCancelled:
        if raising:
            raise


def _open_bars(bar: Any, ctx: TaskContext) -> list[Any]:
    """The task's open bars, outermost first (``bar`` among them)."""
    try:
        bars = [b for b in list(type(bar)._instances)
                if getattr(b, "_bgtasks_ctx", None) is ctx and not getattr(b, "disable", True)]
    except RuntimeError:  # another thread made a bar meanwhile: this one alone will do
        bars = []
    if not any(b is bar for b in bars):  # (tqdm's == compares positions)
        bars.append(bar)
    bars.sort(key=lambda b: abs(getattr(b, "pos", 0)))
    return bars


def _desc(bar: Any) -> str:
    desc = str(getattr(bar, "desc", "") or "").strip()
    return desc[:-1].rstrip() if desc.endswith(":") else desc


def _number(x: Any) -> str:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return str(x)
    return str(int(f)) if f.is_integer() else f"{f:.4g}"


def _last_frame(bar: Any) -> str | None:
    """What tqdm's close would draw last (as one line), or None when it would draw nothing."""
    try:
        if not hasattr(bar, "start_t") or bar.last_print_t < bar.start_t + bar.delay:
            return None  # half made (start_t is set last), or never shown (``delay``)
        leave = abs(bar.pos) == 0 if bar.leave is None else bar.leave
        if not leave:
            return None
        bar._ema_dt = lambda: None  # as tqdm's close does: the overall rate
        return str(bar.__str__())
    except Exception:  # noqa: BLE001 - a bar that cannot format itself leaves no line
        return None


def _write_line(bar: Any, line: str) -> None:
    try:
        bar.fp.write(line + "\n")
        flush = getattr(bar.fp, "flush", None)
        if flush is not None:
            flush()
    except (OSError, ValueError):  # a closed file: nothing to leave
        pass
