"""The transition table is the whole truth about state changes."""

from __future__ import annotations

import itertools

import pytest

from bgtasks_ext.core.errors import InvalidTransition
from bgtasks_ext.core.states import TRANSITIONS, Category, State, advance


@pytest.mark.parametrize("current,new", list(itertools.product(State, State)))
def test_every_pair_is_allowed_or_raises(current: State, new: State) -> None:
    # Given a pair of states
    allowed = new in TRANSITIONS[current]
    # When the change is applied / Then it passes exactly when the table allows it
    if allowed:
        assert advance(current, new) is new
    else:
        with pytest.raises(InvalidTransition) as exc:
            advance(current, new)
        assert current.value in str(exc.value) and new.value in str(exc.value)
        assert exc.value.status == 409


def test_terminal_states_are_final() -> None:
    for state in State:
        assert state.terminal == (TRANSITIONS[state] == frozenset())
    assert {s for s in State if s.terminal} == {State.FINISHED, State.FAILED, State.CANCELLED}


def test_categories_partition_the_states() -> None:
    # Then each state is in exactly one category, as SPEC §2 groups them
    assert Category.PENDING.states == {State.PENDING, State.RUNNING, State.CANCELLING}
    assert Category.FAILED.states == {State.FAILED, State.CANCELLED}
    assert Category.FINISHED.states == {State.FINISHED}
    for state in State:
        assert sum(state in c.states for c in Category) == 1


def test_no_module_but_engine_and_policy_sets_a_state() -> None:
    # Given every module of the package
    import ast
    import pathlib

    import bgtasks_ext

    root = pathlib.Path(bgtasks_ext.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            # When a call makes or changes a record with state=... (evolve, replace, Task)
            if not isinstance(node, ast.Call) or not any(k.arg == "state" for k in node.keywords):
                continue
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
            if name in {"evolve", "replace", "Task"}:
                offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    # Then only the engine's change functions, the end-of-attempt policy, the record codec
    # and admission (which makes a new record, always pending) do it
    allowed_files = {"core/engine.py", "core/policy.py", "store/codec.py", "core/admission.py"}
    assert {o.split(":")[0] for o in offenders} <= allowed_files, offenders
