"""A task's log keeps what a terminal would show of a line redrawn with ``\\r``: its last frame."""

from __future__ import annotations

from bgtasks_ext.core.context import TaskContext
from bgtasks_ext.core.termlines import TermLines


class Sink:
    def __init__(self) -> None:
        self.text = ""
        self.chunks: list[str] = []

    def progress(self, current: float, total: float | None, message: str | None) -> None:
        pass

    def log(self, text: str) -> None:
        self.chunks.append(text)
        self.text += text


def test_plain_output_passes_through_at_once() -> None:
    # Given a task's output with no carriage return
    lines = TermLines()
    # When it writes a line, then half a line
    # Then each write goes to the log as it is, at once (the log streams live)
    assert lines.feed("hello\n") == "hello\n"
    assert lines.feed("working") == "working"
    assert lines.feed("...") == "..."
    assert lines.feed(" done\n") == " done\n"
    assert lines.end() == ""


def test_a_bar_redrawn_with_carriage_returns_keeps_only_its_last_frame() -> None:
    # Given a bar's frames, each written as "\r" + frame, shorter ones padded with spaces
    lines = TermLines()
    sent = [lines.feed(f"\rstep {i}/100 " + " " * (i % 3)) for i in range(101)]
    # Then none of them went to the log while the line was being redrawn
    assert "".join(sent) == ""
    # When the line ends
    # Then one frame, the last, without the padding, goes to the log
    assert lines.feed("\n") == "step 100/100\n"


def test_frames_and_lines_in_one_write_fold_like_a_terminal() -> None:
    lines = TermLines()
    assert lines.feed("a\r1\r22\r333\nnext\r") == "333\n"
    assert lines.feed("NEXT line\nplain\n") == "NEXT line\nplain\n"


def test_a_shorter_frame_overwrites_only_its_own_length() -> None:
    # Given a line, then a carriage return and a shorter text (a terminal keeps the tail)
    lines = TermLines()
    assert lines.feed("\rabcdef\rXY") == ""
    assert lines.feed("\n") == "XYcdef\n"


def test_crlf_line_ends_keep_the_line() -> None:
    lines = TermLines()
    assert lines.feed("first\r\nsecond\r") == "first\n"
    assert lines.feed("\n") == "second\n"


def test_a_line_still_held_when_the_task_ends_is_sent_then() -> None:
    # Given a bar that never ended its line
    lines = TermLines()
    lines.feed("before\n\r 10%\r 50%")
    # When the task ends
    # Then its last frame is sent as a line of its own
    assert lines.end() == " 50%\n"
    # And later output (a worker drains it after the end) passes through unchanged
    assert lines.feed("\rlate\r") == "\rlate\r"


def test_a_cleared_bar_leaves_nothing() -> None:
    # Given a bar cleared on close (tqdm's leave=False: spaces, then a carriage return)
    lines = TermLines()
    lines.feed("\rworking 3/4")
    lines.feed("\r" + " " * 11 + "\r")
    # Then its line leaves nothing behind, and what follows starts clean
    assert lines.feed("result: 4\n") == "result: 4\n"
    assert lines.end() == ""


def test_text_sent_before_the_first_carriage_return_stays() -> None:
    # Given half a line already sent (it streamed live)
    lines = TermLines()
    assert lines.feed("loading: ") == "loading: "
    # When the rest of the line redraws itself
    assert lines.feed("\r1%") == ""
    assert lines.feed("\r100%") == ""
    # Then the final frame follows what was sent: it cannot be taken back
    assert lines.feed("\n") == "100%\n"


def test_a_task_context_folds_what_the_task_writes() -> None:
    # Given a task's context (print() output of the task reaches ctx.log)
    sink = Sink()
    ctx = TaskContext("t1", sink)
    # When the task prints a line, then redraws a progress line 1,000 times
    ctx.log("start\n")
    for i in range(1000):
        ctx.log(f"\r{i + 1}/1000")
    # Then the log has the line and nothing of the bar yet
    assert sink.text == "start\n"
    # When the task's code ends
    ctx.finish()
    # Then the bar's last frame is in the log, once
    assert sink.text == "start\n1000/1000\n"
