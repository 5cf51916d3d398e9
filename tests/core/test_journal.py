"""The start journal of the SQLite store: real files, a real memory map."""

from __future__ import annotations

from pathlib import Path

from bgtasks_ext.store import journal
from bgtasks_ext.store.journal import StartJournal


def test_notes_survive_reopening_and_clear_forgets_them(tmp_path: Path) -> None:
    # Given notes written by one process's journal (closed without clearing, as a crash does)
    first = StartJournal(str(tmp_path / "s.sqlite"))
    first.open()
    first.note("01a2" + "0" * 28, 1)
    first.note("task-b", 3)
    first.note("not an id!", 1)  # (ignored: not an id a store makes)
    first.close()
    # When the next start opens it
    second = StartJournal(str(tmp_path / "s.sqlite"))
    second.open()
    # Then it reads them back, and after clear() none
    assert second.started() == {("01a2" + "0" * 28, 1), ("task-b", 3)}
    second.clear()
    assert second.started() == set()
    second.close()


def test_the_ring_is_bounded_and_keeps_the_newest(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(journal, "SLOTS", 4)
    ring = StartJournal(str(tmp_path / "s.sqlite"))
    ring.open()
    for i in range(10):
        ring.note(f"t{i}", 1)
    assert ring.started() == {(f"t{i}", 1) for i in range(6, 10)}
    assert (tmp_path / "s.sqlite-started").stat().st_size == 4 * journal.SLOT
    ring.close()
