"""How long what an ended task leaves behind is kept: its ``input`` blob, and its record.

Two clocks, both from :class:`.config.EngineConfig`:

- ``keep_inputs_for``: an ended task's input (the pickled cell namespace, which can be
  large) is dropped that long after its end, by a timer per task; at a start, inputs whose
  timers a previous run took with it are swept (:class:`.ports.DropInputs`).
- ``keep`` / ``max_age``: history is pruned at a start and after every ``prune_every``
  ends (:class:`.ports.Prune`), never per task, since a prune scans the history.

Apart from the engine because none of it changes a task's state: the engine adds the ops
returned here to the writes it queues anyway, so a drop or prune lands in the same
transaction as the end that caused it.
"""

from __future__ import annotations

import contextlib
from typing import Callable

from .config import EngineConfig
from .errors import EngineClosed
from .models import Task
from .ports import DropInputs, Op, Prune
from .timers import Timers
from .writer import Writer


class Retention:
    """The input-drop timers and the prune cadence of one engine run (``start`` binds
    the run's writer and timers)."""

    def __init__(self, config: EngineConfig, clock: Callable[[], float]) -> None:
        self.config = config
        self._clock = clock
        self._writer: Writer | None = None
        self._timers: Timers | None = None
        self._ended_since_prune = 0

    def start(self, writer: Writer, timers: Timers) -> list[Op]:
        """The ops a start queues: prune, and the inputs of tasks that ended before it."""
        self._writer, self._timers = writer, timers
        ops: list[Op] = [Prune(self.config.keep, self._prune_before())]
        now, keep_inputs = self._clock(), self.config.keep_inputs_for
        if keep_inputs is not None:
            # Inputs whose timers a previous run took with it: the old ones now, the
            # rest (ended before this start) once their retention has passed.
            ops.append(DropInputs(now - keep_inputs))
            if keep_inputs > 0:
                timers.at(now + keep_inputs, self.drop_inputs, now, None)
        return ops

    def ended(self, task: Task) -> list[Op]:
        """The ops to queue with ``task``'s terminal record (under the engine lock: the
        prune count is the engine's)."""
        ops: list[Op] = []
        keep_inputs = self.config.keep_inputs_for
        if task.has_payload and keep_inputs is not None:
            ended_at = task.finished_at or self._clock()
            if keep_inputs <= 0:
                ops.append(DropInputs(ended_at, task.id))
            elif self._timers is not None:
                with contextlib.suppress(EngineClosed):  # stopped: the next start sweeps
                    self._timers.at(ended_at + keep_inputs, self.drop_inputs, ended_at, task.id)
        self._ended_since_prune += 1
        if self._ended_since_prune >= self.config.prune_every:
            self._ended_since_prune = 0
            ops.append(Prune(self.config.keep, self._prune_before()))
        return ops

    def drop_inputs(self, before: float, task_id: str | None) -> None:
        """A timer's due: an ended task's input retention has passed (see :class:`DropInputs`)."""
        if self._writer is not None:
            with contextlib.suppress(EngineClosed):
                self._writer.put([DropInputs(before, task_id)])

    def _prune_before(self) -> float | None:
        return None if self.config.max_age is None else self._clock() - self.config.max_age
