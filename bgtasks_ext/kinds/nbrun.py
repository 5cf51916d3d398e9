"""Running one notebook job: nbclient drives the kernel on the kernel loop
(:mod:`.kernelpool`), the task's own thread waits, reports progress and turns a cancel
into interrupt → kill → copy written → cancelled.

nbclient does the kernel protocol (``async_execute_cell``, output handling); this module
only adds what a background job needs on top of it: each cell's stream and error output
into the task's log as it arrives (:class:`_Client` extends ``output``), per-cell
progress, and a kernel that is already running and ready (``NotebookClient.async_execute``
would make a new client and wait for it again, ~0.2 s per job).

Imported lazily (the kind's module stays light for the server): it pulls in nbclient.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import re
import time
from pathlib import Path
from typing import Any

from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, DeadKernelError

from ..core.context import TaskContext
from ..core.errors import TaskCancelled
from . import kernelpool, nbfiles, nbparams

STOP_WAIT = 2.0
"""Seconds an interrupted cell gets to end (its traceback lands in the copy) before the
kernel is killed anyway."""
POLL = 0.05
"""Seconds between two looks of the task's thread at a cancel request."""

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


class CellFailed(Exception):
    """A cell raised: the task fails with the cell's error (see ``core.results.error_from``)."""

    def __init__(self, message: str, ename: str, traceback: str, data: dict[str, Any]) -> None:
        super().__init__(message)
        self.bgtasks_type = ename
        self.bgtasks_traceback = traceback
        self.bgtasks_data = data


class _Client(NotebookClient):
    """nbclient's client, with each cell's text output also sent to the task's log."""

    def __init__(self, nb: Any, km: Any, run: Run) -> None:
        super().__init__(nb, km=km)
        self.run = run

    def output(self, outs: list[Any], msg: dict[str, Any], display_id: str | None,
               cell_index: int) -> Any:
        out = super().output(outs, msg, display_id, cell_index)
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            self.run.log(content.get("text", ""))
        elif kind == "error":
            self.run.log(strip_ansi("\n".join(content.get("traceback", []))) + "\n")
        return out


class Run:
    """One job: the notebook (parameters injected) and where it stands."""

    def __init__(self, ctx: TaskContext, nb: Any,
                 kernel: concurrent.futures.Future[kernelpool.Kernel]) -> None:
        self.ctx = ctx
        self.nb = nb
        self.starting = kernel
        """The job's kernel (:func:`.kernelpool.acquire`, started before this run)."""
        self.codes = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
        self.events: queue.SimpleQueue[tuple[int, str]] = queue.SimpleQueue()
        """``(code cells done, running cell's first line)`` for the task's thread."""
        self.failure: dict[str, Any] | None = None
        """The failing cell: ``{"cell": n, "ename", "evalue", "traceback"}``."""
        self.kernel: kernelpool.Kernel | None = None
        self.task: asyncio.Task[None] | None = None
        self.stopping = False

    def log(self, text: str) -> None:
        """Into the task's log (from the kernel loop's thread: ``print`` there reaches no task)."""
        if text:
            self.ctx.log(text)

    # -- on the kernel loop -------------------------------------------------------------
    async def main(self) -> None:
        if self.stopping:  # cancelled before the loop got to it
            kernelpool.discard(self.starting)
            return
        self.task = asyncio.ensure_future(self._execute())
        await self.task

    async def _execute(self) -> None:
        try:
            self.kernel = await asyncio.wrap_future(self.starting)
        except asyncio.CancelledError:  # the job stopped while its kernel was on its way
            kernelpool.discard(self.starting)
            raise
        try:
            client = _Client(self.nb, self.kernel.km, self)
            client.kc = self.kernel.kc
            await self._language_info(client)
            done = 0
            for index, cell in enumerate(self.nb.cells):
                if cell.cell_type != "code":
                    continue
                line = nbfiles.first_line(cell.source)
                self.events.put((done, line))
                if line:  # an empty cell runs nothing (nbclient skips it)
                    self.log(f"[cell {index + 1}] {line}\n")
                try:
                    await client.async_execute_cell(cell, index, execution_count=done + 1)
                except CellExecutionError as exc:
                    shown = [o for o in cell.outputs if o.get("output_type") == "error"]
                    lines = shown[-1].get("traceback", []) if shown else [exc.traceback]
                    self.failure = {"cell": index + 1, "ename": exc.ename, "evalue": exc.evalue,
                                    "traceback": strip_ansi("\n".join(lines))}
                    return
                except DeadKernelError:
                    self.failure = {"cell": index + 1, "ename": "DeadKernelError",
                                    "evalue": "the kernel died while running this cell",
                                    "traceback": ""}
                    return
                done += 1
                self.events.put((done, line))
        finally:
            await self.kernel.kill()

    async def _language_info(self, client: _Client) -> None:
        """As nbclient's ``async_execute`` does: the kernel's ``language_info`` into the
        copy's metadata."""
        assert self.kernel is not None
        msg_id = self.kernel.kc.kernel_info()
        reply = await client.async_wait_for_reply(msg_id)
        info = (reply or {}).get("content", {}).get("language_info")
        if info:
            self.nb.metadata["language_info"] = info

    async def stop(self) -> None:
        """Cancel: interrupt the running cell, give it :data:`STOP_WAIT` to end, kill the kernel."""
        self.stopping = True
        task = self.task
        if task is None or task.done():
            return
        if self.kernel is not None:
            await self.kernel.interrupt()
            try:
                await asyncio.wait_for(asyncio.shield(task), STOP_WAIT)
            except BaseException:  # noqa: BLE001, S110 - timed out, or the cell's error: ending anyway
                pass
        if not task.done():
            task.cancel()
            try:
                await task
            except BaseException:  # noqa: BLE001, S110
                pass
        if self.kernel is not None:
            await self.kernel.kill()

    # -- on the task's thread ----------------------------------------------------------
    def wait(self, fut: concurrent.futures.Future[None]) -> None:
        """Until the run ends, reporting progress; a cancel (flag, or SIGTERM raising
        :class:`TaskCancelled` here) stops the kernel and re-raises."""
        ctx, total = self.ctx, len(self.codes)
        ctx.progress(0, total, "starting the kernel")
        try:
            while True:
                try:
                    fut.result(timeout=POLL)
                    self._drain(total)
                    # A finished job's row says what ran, not the last cell's first line;
                    # a failed one's stays at the cells done before the failing one.
                    if self.failure is None:
                        ctx.progress(total, total, f"{total} code cell{'s' if total != 1 else ''} run")
                    return
                except concurrent.futures.TimeoutError:
                    pass
                self._drain(total)
                if ctx.cancelled():
                    raise TaskCancelled("cancelled")
        except TaskCancelled:
            stopping = kernelpool.submit(self.stop())
            while True:
                try:
                    stopping.result(timeout=STOP_WAIT + 10)
                    break
                except TaskCancelled:
                    continue  # a SIGTERM meanwhile (the cancel escalating): stop anyway
                except Exception:  # noqa: BLE001 - timed out: the worker's end kills the rest
                    break
            raise

    def _drain(self, total: int) -> None:
        """Report the latest progress the kernel loop posted (raises on cancel)."""
        latest = None
        while True:
            try:
                latest = self.events.get_nowait()
            except queue.Empty:
                break
        if latest is not None:
            self.ctx.progress(latest[0], total, latest[1])


def run_notebook(ctx: TaskContext, target: nbfiles.Target, parameters: dict[str, Any],
                 kernel: concurrent.futures.Future[kernelpool.Kernel]) -> dict[str, Any]:
    """Run the notebook of ``target`` on ``kernel`` (on its way); returns the result dict,
    raises :class:`CellFailed` for a failing cell; the copy is written in every case."""
    started = time.time()
    root, path = target.root, target.path
    try:
        nb = nbfiles.read_notebook(target.source, path)
        nbparams.inject(nb, parameters, nbparams.language(nb.metadata))
    except BaseException:
        kernelpool.discard(kernel)
        raise
    nb.metadata["bgtasks"] = {"task_id": ctx.task_id, "source": path, "parameters": parameters}
    run = Run(ctx, nb, kernel)
    fut = kernelpool.submit(run.main())
    try:
        run.wait(fut)
    except BaseException as exc:  # cancelled, timed out, or the kernel did not start: a copy still
        try:
            copy = _write(run, root, path, started)
        except Exception as err:  # noqa: BLE001 - the job's own end matters more
            ctx.log(f"[bgtasks] {err}\n")  # (says it is the executed copy, beside which notebook)
        else:
            # The task's record names the copy however it ended (error.data: a cancelled or
            # timed-out job's row opens it too).
            if getattr(exc, "bgtasks_data", None) is None:
                exc.bgtasks_data = {"executed_copy": copy}  # type: ignore[attr-defined]
        raise
    copy = _write(run, root, path, started)
    if run.failure is not None:
        f = run.failure
        cell = nb.cells[f["cell"] - 1]
        raise CellFailed(
            f"cell {f['cell']} ({nbfiles.first_line(cell.source)}): {f['ename']}: {f['evalue']}",
            f["ename"], f["traceback"], {"executed_copy": copy, "cell": f["cell"]},
        )
    return {"executed_copy": copy, "cells": len(run.codes), "kernel_name": target.kernel_name}


def _write(run: Run, root: Path, path: str, started: float) -> str:
    return nbfiles.write_copy(run.nb, root, path, started)
