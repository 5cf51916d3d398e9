"""tqdm bars in a task's code report the task's progress and leave one frame in its log
(core/tqdm_bridge.py), with the real tqdm and the one attempt runner every executor uses."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest

from bgtasks_ext.core import output
from bgtasks_ext.core.attempt import run_attempt
from bgtasks_ext.core.context import TaskContext
from bgtasks_ext.core.ports import OutcomeStatus

import tqdm.std as tqdm_std  # noqa: E402 - a test extra: missing, this fails, never skips
from tqdm import tqdm, trange  # noqa: E402
from tqdm.auto import tqdm as auto_tqdm  # noqa: E402


class Recorder:
    def __init__(self) -> None:
        self.progress_calls: list[tuple[float, float | None, str | None]] = []
        self.text = ""

    def progress(self, current: float, total: float | None, message: str | None) -> None:
        self.progress_calls.append((current, total, message))

    def log(self, text: str) -> None:
        self.text += text


def run_task(fn: Any) -> tuple[Any, Recorder]:
    """Run ``fn`` as a task's code, as every executor does; its outcome and what it reported."""
    sink = Recorder()
    return run_attempt(TaskContext("t1", sink), fn), sink


def test_a_tqdm_loop_reports_n_total_and_desc_as_the_tasks_progress() -> None:
    # Given task code with an ordinary tqdm loop that takes ~0.5 s (tqdm refreshes every 0.1 s)
    def job() -> None:
        for _ in tqdm(range(50), desc="rows"):
            time.sleep(0.01)

    # When it runs as a task
    outcome, sink = run_task(job)
    # Then the bar's numbers and description became the task's progress while it ran
    assert outcome.status == OutcomeStatus.FINISHED
    assert sink.progress_calls[0] == (0, 50, "rows")
    assert any(0 < current < 50 for current, _, _ in sink.progress_calls)
    assert all(total == 50 and message == "rows" for _, total, message in sink.progress_calls)
    # And the last report is exact
    assert sink.progress_calls[-1] == (50, 50, "rows")


def test_the_log_holds_one_final_frame_per_bar_and_no_carriage_return() -> None:
    # Given task code that prints, runs a bar on stderr (tqdm's default) and one on stdout
    def job() -> None:
        print("start")
        for _ in tqdm(range(30), desc="first"):
            time.sleep(0.01)
        for _ in trange(7, desc="second", file=sys.stdout, mininterval=0):
            pass
        print("end")

    # When it runs
    outcome, sink = run_task(job)
    # Then the log has the prints and each bar's last frame, once, as a line
    assert outcome.status == OutcomeStatus.FINISHED
    assert "\r" not in sink.text
    lines = sink.text.splitlines()
    assert lines[0] == "start" and lines[-1] == "end" and len(lines) == 4, sink.text
    assert lines[1].startswith("first: 100%") and "30/30" in lines[1]
    assert lines[2].startswith("second: 100%") and "7/7" in lines[2]


def test_nested_bars_give_the_outer_numbers_and_the_inner_in_the_message() -> None:
    # Given an epochs x batches loop with tqdm.auto (the inner bar left on screen: leave=True)
    def job() -> None:
        for _ in auto_tqdm(range(3), desc="epoch"):
            for _ in auto_tqdm(range(20), desc="batch"):
                time.sleep(0.01)

    # When it runs
    outcome, sink = run_task(job)
    messages = [m for _, _, m in sink.progress_calls]
    # Then the numbers are the outer bar's, and the message names the inner bar's progress
    assert outcome.status == OutcomeStatus.FINISHED
    assert {total for _, total, _ in sink.progress_calls} == {3}
    assert any(m is not None and m.startswith("epoch · batch ") and m.endswith("/20") for m in messages)
    assert sink.progress_calls[-1] == (3, 3, "epoch")
    # And the log holds one line per bar that was left, no cursor movement, no carriage return
    assert "\r" not in sink.text and "\x1b" not in sink.text
    lines = sink.text.splitlines()
    assert len(lines) == 4, sink.text
    assert sum(line.startswith("batch: 100%") for line in lines) == 3
    assert lines[-1].startswith("epoch: 100%")


def test_a_manual_bar_with_postfix_and_tqdm_write() -> None:
    # Given a bar driven by update(), with a postfix, and tqdm.write() lines between its frames
    def job() -> None:
        with tqdm(total=4, desc="upload", unit="B", mininterval=0) as bar:
            for i in range(4):
                bar.update(1)
                bar.set_postfix(part=i + 1)
                tqdm.write(f"sent part {i + 1}")

    # When it runs
    outcome, sink = run_task(job)
    # Then the postfix is in the message, and the log has the lines and one frame
    assert outcome.status == OutcomeStatus.FINISHED
    assert sink.progress_calls[-1] == (4, 4, "upload · part=4")
    lines = sink.text.splitlines()
    assert lines[:4] == [f"sent part {i}" for i in range(1, 5)], sink.text
    assert len(lines) == 5 and lines[4].startswith("upload: 100%")


def test_a_bar_cleared_on_close_leaves_nothing_in_the_log() -> None:
    def job() -> None:
        for _ in tqdm(range(10), leave=False):
            pass
        print("after")

    _, sink = run_task(job)
    assert sink.text == "after\n"
    assert sink.progress_calls[-1][:2] == (10, 10)


def test_a_tqdm_loop_stops_with_TaskCancelled_when_the_task_is_cancelled() -> None:
    # Given a long tqdm loop whose task is asked to stop half-way (as an executor would)
    sink = Recorder()
    ctx = TaskContext("t1", sink)
    reached: list[int] = []

    def job() -> None:
        for i in tqdm(range(10_000), desc="long"):
            if i == 20:
                ctx.request_cancel()
            reached.append(i)
            time.sleep(0.001)

    # When it runs
    outcome = run_attempt(ctx, job)
    # Then the loop stopped at the bar's next refresh (every 0.1 s): the task ended cancelled
    assert outcome.status == OutcomeStatus.CANCELLED
    assert 20 <= reached[-1] < 5_000
    # And the bar left its last frame in the log
    assert sink.text.startswith("long:") and sink.text.count("\n") == 1


def test_a_disabled_bar_reports_nothing_and_runs() -> None:
    def job() -> int:
        return sum(tqdm(range(10), disable=True))

    outcome, sink = run_task(job)
    assert outcome.status == OutcomeStatus.FINISHED and outcome.preview == 45
    assert sink.progress_calls == [] and sink.text == ""


def test_bars_outside_a_task_draw_as_tqdm_always_did() -> None:
    # Given the bridge installed in this process (a task ran here before)
    run_task(lambda: None)
    # When a bar runs in the foreground
    out = io.StringIO()
    for _ in tqdm(range(5), file=out, mininterval=0, desc="fg"):
        pass
    # Then it draws every frame with carriage returns, as tqdm does
    assert out.getvalue().count("\r") >= 5 and "fg: 100%" in out.getvalue()


def test_tqdm_imported_after_the_first_task_is_tied_to_tasks_too() -> None:
    # Given a fresh interpreter where a task ran before anything imported tqdm
    code = textwrap.dedent("""
        import sys
        from bgtasks_ext.core.attempt import run_attempt
        from bgtasks_ext.core.context import TaskContext

        class Sink:
            calls = []
            def progress(self, c, t, m): self.calls.append((c, t, m))
            def log(self, text): pass

        run_attempt(TaskContext("t0", Sink()), lambda: None)
        assert "tqdm" not in sys.modules, "the bridge must not import tqdm"

        def job():
            from tqdm import tqdm  # imported by the task itself
            for _ in tqdm(range(3), desc="late"):
                pass

        sink = Sink()
        run_attempt(TaskContext("t1", sink), job)
        print(sink.calls[-1])
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    # Then tqdm, imported by the task, reported the task's progress
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(3.0, 3.0, 'late')"


def test_print_routing_still_sends_plain_lines_at_once() -> None:
    # Given a task printing a line (no carriage return)
    seen_during: list[str] = []
    sink = Recorder()
    ctx = TaskContext("t1", sink)

    def job() -> None:
        print("live line")
        seen_during.append(sink.text)

    output.install()
    run_attempt(ctx, job)
    # Then the line reached the log while the task still ran
    assert seen_during == ["live line\n"]


def test_a_bar_updated_by_the_tasks_own_threads_reports_while_the_task_waits() -> None:
    # Given task code whose pool threads update one bar while the task's thread only waits
    from concurrent.futures import ThreadPoolExecutor

    sink = Recorder()
    during: list[int] = []

    def job() -> None:
        with tqdm(total=40, desc="files", mininterval=0) as bar:
            def work(i: int) -> None:
                time.sleep(0.02)
                bar.update(1)

            with ThreadPoolExecutor(4) as pool:
                list(pool.map(work, range(40)))
            during.extend(int(c) for c, _, _ in sink.progress_calls)

    # When it runs
    outcome = run_attempt(TaskContext("t1", sink), job)
    # Then progress arrived from the pool's updates before the bar closed, and ended exact
    assert outcome.status == OutcomeStatus.FINISHED
    assert any(0 < n < 40 for n in during), during
    assert sink.progress_calls[-1] == (40, 40, "files")


def test_a_bar_kept_after_its_task_ended_reports_nothing_into_it() -> None:
    # Given a bar a task made and left open, the task over
    sink = Recorder()
    kept: list[Any] = []
    run_attempt(TaskContext("t1", sink), lambda: kept.append(tqdm(total=5, file=io.StringIO())))
    reports = len(sink.progress_calls)
    # When it is updated and closed later, outside any task
    kept[0].update(5)
    kept[0].refresh()
    kept[0].close()
    # Then the ended task got nothing more
    assert len(sink.progress_calls) == reports


def test_a_notebook_bar_in_a_task_is_not_displayed_and_leaves_its_last_frame() -> None:
    # Given task code using tqdm.notebook (what tqdm.auto gives inside a kernel, where a
    # kernel-executor task runs in a thread: a widget displayed from there would land in
    # whatever cell runs at the moment)
    import ipywidgets  # noqa: F401 - a runtime dependency: never skipped
    from tqdm.notebook import tqdm as notebook_tqdm

    def job() -> None:
        for _ in notebook_tqdm(range(12), desc="cells", delay=0.01):
            time.sleep(0.01)

    # When it runs
    outcome, sink = run_task(job)
    # Then nothing was displayed (outside a kernel, display() would print the widget's repr),
    # the bar's progress was the task's, and its last frame is the log's one line
    assert outcome.status == OutcomeStatus.FINISHED
    assert sink.progress_calls[-1] == (12, 12, "cells")
    lines = sink.text.splitlines()
    assert len(lines) == 1 and lines[0].startswith("cells: 100%") and "12/12" in lines[0], sink.text


def test_a_bar_written_to_a_file_of_its_own_draws_there_and_reports() -> None:
    # Given task code whose bar writes to a file of the user's (not the task's output)
    out = io.StringIO()

    def job() -> None:
        for _ in tqdm(range(6), desc="to file", file=out, mininterval=0):
            pass

    # When it runs
    outcome, sink = run_task(job)
    # Then the bar drew its frames in that file, as tqdm does, and reported the task's progress
    assert outcome.status == OutcomeStatus.FINISHED
    assert out.getvalue().count("\r") >= 6 and "6/6" in out.getvalue()
    assert sink.progress_calls[-1] == (6, 6, "to file") and sink.text == ""
