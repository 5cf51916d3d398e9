"""Kinds: typed parameters become a JSON Schema; bad values are named."""

from __future__ import annotations

from dataclasses import dataclass

import pydantic
import pytest

from bgtasks_ext import kind
from bgtasks_ext.core.context import TaskContext
from bgtasks_ext.core.errors import BgTasksError, InvalidInput, UnknownKind
from bgtasks_ext.core.registry import KindRegistry, make_kind
from bgtasks_ext.kinds import default_registry


class Sink:
    def progress(self, *a: object) -> None: ...

    def log(self, text: str) -> None: ...


@kind("add", description="Add two numbers.")
def add(a: int, b: int = 2) -> int:
    return a + b


class Greeting(pydantic.BaseModel):
    """Say hello."""

    who: str = "world"
    times: int = pydantic.Field(1, ge=1)

    def run(self, ctx: TaskContext) -> str:
        return " ".join(f"hello {self.who}" for _ in range(self.times))


@dataclass
class Scale:
    factor: float = 1.0

    def run(self, ctx: TaskContext) -> float:
        return self.factor * 2


class Plain:
    n: int = 3

    def run(self, ctx: TaskContext) -> int:
        return self.n + 1


def run(kdef_obj: object, params: dict) -> object:
    kdef = make_kind(kdef_obj)
    ctx = TaskContext("t", Sink(), kdef.validate(params))
    return kdef.run(ctx)


def test_function_kind_schema_and_run() -> None:
    kdef = make_kind(add)
    schema = kdef.schema()
    assert schema["properties"]["a"]["type"] == "integer"
    assert schema["required"] == ["a"]
    assert schema["description"] == "Add two numbers."
    assert run(add, {"a": 1}) == 3


@pytest.mark.parametrize(
    "obj,params,expected",
    [(Greeting, {"who": "ada", "times": 2}, "hello ada hello ada"), (Scale, {"factor": 2}, 4.0), (Plain, {}, 4)],
)
def test_class_kinds_run(obj: object, params: dict, expected: object) -> None:
    assert run(obj, params) == expected


@pytest.mark.parametrize(
    "params,field",
    [
        ({}, "params.a"),
        ({"a": "x"}, "params.a"),
        ({"a": 1, "c": 3}, "params.c"),
    ],
)
def test_bad_params_name_the_field(params: dict, field: str) -> None:
    # When parameters fail the schema / Then the error names the field and is a 400
    with pytest.raises(InvalidInput) as exc:
        make_kind(add).validate(params)
    assert exc.value.field == field
    assert exc.value.status == 400


def test_params_must_be_an_object() -> None:
    with pytest.raises(InvalidInput) as exc:
        make_kind(add).validate([1, 2])  # type: ignore[arg-type]
    assert exc.value.field == "params"


def test_constraint_violation_names_field() -> None:
    with pytest.raises(InvalidInput) as exc:
        make_kind(Greeting).validate({"times": 0})
    assert exc.value.field == "params.times"


def test_class_without_run_is_refused() -> None:
    class NoRun:
        x: int = 1

    with pytest.raises(BgTasksError, match="run"):
        make_kind(NoRun)


def test_registry_unknown_kind_lists_known() -> None:
    reg = KindRegistry()
    reg.register(add)
    with pytest.raises(UnknownKind) as exc:
        reg.get("nope")
    assert exc.value.field == "kind" and "add" in str(exc.value)


def test_register_ref_bad_reference() -> None:
    reg = KindRegistry()
    with pytest.raises(InvalidInput, match="module:name"):
        reg.register_ref("no_colon")
    with pytest.raises(InvalidInput, match="cannot import"):
        reg.register_ref("no_such_module_xyz:thing")


def test_builtins_and_entry_points() -> None:
    # Given the default registry / Then count and sleep are there with schemas
    reg = default_registry()
    assert {"count", "sleep"} <= set(reg.names())
    count = reg.get("count")
    assert count.schema()["properties"]["times"]["type"] == "integer"
    assert count.ref == "bgtasks_ext.kinds.count:count"
    with pytest.raises(InvalidInput) as exc:
        count.validate({"times": -1})
    assert exc.value.field == "params.times"


def test_entry_point_group_is_installed() -> None:
    from importlib.metadata import entry_points

    names = {ep.name for ep in entry_points(group="bgtasks_ext.kinds")}
    assert {"count", "sleep"} <= names
