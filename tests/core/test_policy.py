"""The one end-of-attempt policy, over every combination it decides.

The same table holds for a server that stops under a task and for a start after a
crash (``recover``), which is the point of having one policy: a task ends the same
way whichever of them saw it end.
"""

from __future__ import annotations

import itertools

import pytest

from bgtasks_ext.core import policy
from bgtasks_ext.core.models import Task, TaskError
from bgtasks_ext.core.ports import Outcome, OutcomeStatus
from bgtasks_ext.core.states import State

NOW = 1_700_000_100.0
RETRY_AT = NOW + 4.0


def task(state: State, reason: str | None, retries_left: bool) -> Task:
    return Task(
        id="t1", kind="count", name="t", params={}, state=state, created_at=NOW - 100,
        executor="process", started_at=None if state is State.PENDING else NOW - 50,
        attempt=1, retries=1 if retries_left else 0, timeout=30.0, cancel_reason=reason,
        run_on=NOW - 90,
    )


LIVE = (State.PENDING, State.RUNNING, State.CANCELLING)
REASONS = (None, policy.BY_USER, policy.BY_TIMEOUT)

# (state, cancel reason, retries left) -> (state, error reason) of an interrupted attempt
INTERRUPTED = {
    (State.PENDING, None, False): (State.PENDING, None),
    (State.PENDING, None, True): (State.PENDING, None),
    (State.RUNNING, None, False): (State.FAILED, "interrupted"),
    (State.RUNNING, None, True): (State.PENDING, "interrupted"),
    (State.CANCELLING, None, False): (State.CANCELLED, None),  # an older record: a user's
    (State.CANCELLING, None, True): (State.CANCELLED, None),
    (State.CANCELLING, policy.BY_USER, False): (State.CANCELLED, None),
    (State.CANCELLING, policy.BY_USER, True): (State.CANCELLED, None),
    (State.CANCELLING, policy.BY_TIMEOUT, False): (State.FAILED, "timeout"),
    (State.CANCELLING, policy.BY_TIMEOUT, True): (State.PENDING, "timeout"),
}


def _combinations() -> list[tuple[State, str | None, bool]]:
    combos = []
    for state, reason, left in itertools.product(LIVE, REASONS, (False, True)):
        # A reason is recorded only when the task moves to cancelling.
        if reason is not None and state is not State.CANCELLING:
            continue
        combos.append((state, reason, left))
    return combos


def test_the_table_covers_every_combination() -> None:
    assert set(_combinations()) == set(INTERRUPTED)


@pytest.mark.parametrize("state,reason,left", _combinations())
def test_interrupted(state: State, reason: str | None, left: bool) -> None:
    # Given a live task, When its attempt stops without an outcome (stop, crash, kernel gone)
    before = task(state, reason, left)
    after = policy.interrupted(before, NOW)
    # Then the table says what it becomes
    want_state, want_reason = INTERRUPTED[(state, reason, left)]
    assert after.state is want_state
    assert (after.error.reason if after.error else None) == want_reason
    if want_state is State.PENDING and state is not State.PENDING:
        assert after.attempt == 2 and after.started_at is None and after.cancel_reason is None
        assert after.run_on == before.run_on  # the next start runs it at once
    if want_state.terminal:
        assert after.finished_at == NOW and after.attempt == 1
    if state is State.PENDING:
        assert after is before


@pytest.mark.parametrize("state,reason,left", _combinations())
def test_recovery_after_a_crash_decides_as_a_stop_does(state: State, reason: str | None, left: bool) -> None:
    # Given the same task left in the store by a server that died
    before = task(state, reason, left)
    # When a start recovers it
    changed, pending = policy.recover([before], NOW)
    # Then it ends exactly as the stop's rule says, and runs again only when pending
    expected = policy.interrupted(before, NOW)
    assert changed == ([] if expected is before else [expected])
    assert pending == ([expected] if expected.state is State.PENDING else [])


ERROR = TaskError("ValueError", "boom", "tb")

# (state, cancel reason, outcome, retries left, stopping) -> (state, error reason)
ATTEMPT = {
    # It returned.
    (State.RUNNING, None, OutcomeStatus.FINISHED, False, False): (State.FINISHED, None),
    (State.RUNNING, None, OutcomeStatus.FINISHED, True, True): (State.FINISHED, None),
    # It returned after a cancel was asked for: partial, so cancelled (or timed out).
    (State.CANCELLING, policy.BY_USER, OutcomeStatus.FINISHED, True, False): (State.CANCELLED, None),
    (State.CANCELLING, policy.BY_TIMEOUT, OutcomeStatus.FINISHED, False, False): (State.FAILED, "timeout"),
    (State.CANCELLING, policy.BY_TIMEOUT, OutcomeStatus.FINISHED, True, False): (State.PENDING, "timeout"),
    # It raised.
    (State.RUNNING, None, OutcomeStatus.FAILED, False, False): (State.FAILED, None),
    (State.RUNNING, None, OutcomeStatus.FAILED, True, False): (State.PENDING, None),
    (State.RUNNING, None, OutcomeStatus.FAILED, True, True): (State.PENDING, None),
    (State.CANCELLING, policy.BY_USER, OutcomeStatus.FAILED, False, False): (State.FAILED, None),
    # It stopped on a cancel.
    (State.CANCELLING, policy.BY_USER, OutcomeStatus.CANCELLED, True, False): (State.CANCELLED, None),
    (State.CANCELLING, policy.BY_USER, OutcomeStatus.CANCELLED, True, True): (State.CANCELLED, None),
    (State.CANCELLING, policy.BY_TIMEOUT, OutcomeStatus.CANCELLED, False, False): (State.FAILED, "timeout"),
    (State.CANCELLING, policy.BY_TIMEOUT, OutcomeStatus.CANCELLED, True, True): (State.PENDING, "timeout"),
    # Stopped by nobody's request: the server's shutdown interrupted it.
    (State.RUNNING, None, OutcomeStatus.CANCELLED, False, True): (State.FAILED, "interrupted"),
    (State.RUNNING, None, OutcomeStatus.CANCELLED, True, True): (State.PENDING, "interrupted"),
    # ... or the task raised TaskCancelled itself while the server runs on.
    (State.RUNNING, None, OutcomeStatus.CANCELLED, True, False): (State.CANCELLED, None),
}


@pytest.mark.parametrize("case", sorted(ATTEMPT, key=str))
def test_after_attempt(case: tuple[State, str | None, OutcomeStatus, bool, bool]) -> None:
    state, reason, status, left, stopping = case
    # Given a running or cancelling task, When its attempt reports an outcome
    before = task(state, reason, left)
    outcome = Outcome(status, result=b"x", preview=5, error=ERROR if status is OutcomeStatus.FAILED else None)
    after = policy.after_attempt(before, outcome, NOW, stopping=stopping, retry_at=RETRY_AT)
    # Then the table says what it becomes
    want_state, want_reason = ATTEMPT[case]
    assert after.state is want_state
    assert (after.error.reason if after.error else None) == want_reason
    if status is OutcomeStatus.FAILED:
        assert after.error == ERROR
    if want_state is State.FINISHED:
        assert after.result_preview == 5
    if want_state is State.PENDING:
        # A retry after an outcome waits its back-off; one after a stop runs on the next start.
        assert after.attempt == 2 and after.run_on == (before.run_on if want_reason == "interrupted" else RETRY_AT)


def test_a_timeout_message_names_the_timeout() -> None:
    after = policy.interrupted(task(State.CANCELLING, policy.BY_TIMEOUT, False), NOW)
    assert after.error is not None and after.error.message == "timed out after 30 s"


@pytest.mark.parametrize("left", [False, True])
def test_a_pending_record_whose_attempt_had_begun_is_interrupted(left: bool) -> None:
    # Given a pending record, and the start journal saying its attempt had begun (the
    # process died before the running record was stored)
    before = task(State.PENDING, None, left)
    # When a start recovers it
    changed, pending = policy.recover([before], NOW, started={("t1", 1)})
    # Then it is interrupted like a running task: retried once more, or failed
    [after] = changed
    assert after.error is not None and after.error.reason == "interrupted"
    if left:
        assert after.state is State.PENDING and after.attempt == 2 and pending == [after]
    else:
        assert after.state is State.FAILED and pending == []
    # (a note of another attempt changes nothing)
    assert policy.recover([before], NOW, started={("t1", 2)}) == ([], [before])


def test_a_retry_that_finishes_carries_no_earlier_error() -> None:
    # Given a task whose first attempt failed and was retried
    first = task(State.RUNNING, None, True)
    retried = policy.after_attempt(first, Outcome(OutcomeStatus.FAILED, error=TaskError("RuntimeError", "first")),
                                   NOW, stopping=False, retry_at=RETRY_AT)
    assert retried.state is State.PENDING and retried.error is not None  # why it runs again
    # When the second attempt finishes
    running = retried.evolve(state=State.RUNNING, started_at=RETRY_AT)
    done = policy.after_attempt(running, Outcome(OutcomeStatus.FINISHED, preview=1), NOW + 5,
                                stopping=False, retry_at=NOW + 9)
    # Then the finished task has no error
    assert done.state is State.FINISHED and done.error is None


@pytest.mark.parametrize("reason", [policy.BY_USER, policy.BY_TIMEOUT])
def test_what_stopped_code_left_stays_on_the_record(reason: str) -> None:
    # Given a cancelled or timed-out attempt whose code said what it left (a notebook
    # job's executed copy, as TaskCancelled.bgtasks_data)
    left = TaskError("TaskCancelled", "cancelled", data={"executed_copy": "r.2026.ipynb"})
    before = task(State.CANCELLING, reason, False)
    # When its outcome arrives
    after = policy.after_attempt(before, Outcome(OutcomeStatus.CANCELLED, error=left), NOW,
                                 stopping=False, retry_at=RETRY_AT)
    # Then the ended record still names it: under the cancel, or under the timeout's error
    assert after.error is not None and after.error.data == {"executed_copy": "r.2026.ipynb"}
    if reason == policy.BY_TIMEOUT:
        assert after.state is State.FAILED and after.error.reason == "timeout"
    else:
        assert after.state is State.CANCELLED
