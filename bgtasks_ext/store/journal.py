"""The start journal: which attempts began running in this process, cheaply durable.

Code that runs in the server's own process (the thread executor) can take the server
down. The next start must then find such a task *started*, or it would run it again,
and crash again, forever. Committing the ``running`` record before the code starts
would say so, but costs a round trip to the writer thread on every task; instead the
claiming thread writes one slot of a memory-mapped file: a memory store, with no
system call and no lock (a thread that gives up the GIL for a system call can wait
long to get it back, and every claim behind it would wait too). The page belongs to
the kernel's page cache, so it survives the death of the process, which is what it is
for; a whole machine's crash is not.

A slot is needed only until the task's ``running`` record is committed (the writer
commits within milliseconds), so the file is a ring of :data:`SLOTS` slots, reused in
turn. Servers sharing one store file share the ring; each starts writing at a random
slot, so their notes rarely meet, and a note of another server's task is ignored
(recovery looks only at the tasks it adopts).
"""

from __future__ import annotations

import itertools
import mmap
import os
import random
import re
import threading

SLOT = 48
SLOTS = 1 << 16
"""Slots in the ring (3 MiB): claims that may be in flight before their commit."""
_ENTRY = re.compile(rb"([0-9A-Za-z_-]{1,40}) (\d{1,6})\n")


class StartJournal:
    """``<prefix>-started``: a ring of fixed slots, ``task_id attempt\\n`` each."""

    def __init__(self, prefix: str) -> None:
        self.path = f"{prefix}-started"
        self._lock = threading.Lock()
        self._map: mmap.mmap | None = None
        self._next = itertools.count(random.randrange(SLOTS))

    def open(self) -> None:
        with self._lock:
            if self._map is not None:
                return
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                if os.fstat(fd).st_size != SLOT * SLOTS:
                    os.ftruncate(fd, SLOT * SLOTS)
                self._map = mmap.mmap(fd, SLOT * SLOTS, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            finally:
                os.close(fd)

    def close(self) -> None:
        with self._lock:
            if self._map is not None:
                self._map.close()
                self._map = None

    def note(self, task_id: str, attempt: int) -> None:
        ring = self._map
        if ring is None:
            return
        entry = f"{task_id} {attempt}\n".encode()
        if len(entry) > SLOT or not _ENTRY.fullmatch(entry):
            return  # not an id this store makes; its running record is all there is
        at = (next(self._next) % SLOTS) * SLOT
        ring[at:at + SLOT] = entry.ljust(SLOT, b"\0")

    def started(self) -> set[tuple[str, int]]:
        """Every (task id, attempt) in the ring."""
        with self._lock:
            data = bytes(self._map) if self._map is not None else b""
        found = set()
        for at in range(0, len(data), SLOT):
            match = _ENTRY.match(data, at, at + SLOT)
            if match is not None:
                found.add((match.group(1).decode(), int(match.group(2))))
        return found

    def clear(self) -> None:
        """Forget every slot (a start has settled what they spoke for)."""
        with self._lock:
            if self._map is not None:
                self._map[:] = bytes(SLOT * SLOTS)
