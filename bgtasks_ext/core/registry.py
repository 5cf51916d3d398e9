"""Kinds: registered types of task with typed parameters.

A kind is either an annotated function (its parameters are the task's parameters;
a parameter named ``ctx`` receives the :class:`~.context.TaskContext`) or a class
with annotated fields and a ``run(self, ctx)`` method (a pydantic model, a
dataclass, or a plain annotated class). Pydantic turns the annotations into a JSON
Schema and validates parameters against it, so a bad value is reported with the
name of its field.
"""

from __future__ import annotations

import copy
import importlib
import inspect
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Callable, Collection, Iterator, Mapping

import pydantic

from .context import TaskContext
from .errors import BgTasksError, InvalidInput, UnknownKind
from .jsontext import dumps as json_dumps

ENTRY_POINT_GROUP = "bgtasks_ext.kinds"


@dataclass(frozen=True)
class KindSite:
    """Where the server admits tasks, for a kind's :attr:`KindDef.check`: its
    ``root_dir`` (``None``: no server; a check then uses the current directory) and the
    names of the kernels it can start (``None``: not known, so not checked)."""

    root_dir: str | None = None
    kernel_names: Callable[[], Collection[str] | None] | None = None
    """Called at each check (a kernelspec installed while the server runs counts);
    answers ``None`` when it cannot tell."""


@dataclass(frozen=True)
class Checked:
    """What a kind's check admits: the parameters (normalised), and the task's default
    name and its working directory when the kind sets them."""

    params: dict[str, Any]
    name: str | None = None
    """The task's name when the caller gives none (else the kind's name)."""
    cwd: str | None = None
    """The task's working directory (absolute), whatever the caller asked."""


KindCheck = Callable[[dict[str, Any], KindSite], Checked]

_schemas: dict[int, tuple[Any, dict[str, Any]]] = {}
_defaults: dict[int, tuple[Any, dict[str, Any]]] = {}


def kind(
    name: str | None = None, *, title: str | None = None, description: str | None = None,
    needs_payload: bool = False, warm: str | None = None, check: KindCheck | None = None,
) -> Callable[[Any], Any]:
    """Mark a function or class as a kind (the name defaults to its ``__name__``).

    ``needs_payload``: a task of this kind carries input bytes (``TaskSpec.payload``)
    that only a kernel makes; the engine refuses one without them, except on an
    executor that runs inside the kernel (which holds the job itself).

    ``warm``: ``"module:function"``, called as ``function(settings)`` (the kind's
    ``EngineConfig.kind_settings`` entry, ``{}`` when none) once in each process worker,
    on a background thread, after the first task of this kind reached that worker's
    pool (and at the start of each worker started later): where a kind imports its
    heavy modules or pre-starts what its tasks take over (see :mod:`.warm`). Never
    called elsewhere (thread executor, a Dask worker).

    ``check``: ``check(params, site) -> Checked``, the kind's own admission rule, called by
    :func:`.admission.admit` (every caller: REST, kernels, schedules) with the validated
    parameters and where the server runs (:class:`KindSite`); raises
    :class:`~.errors.InvalidInput` naming the field (``params.path``) for what the
    schema cannot say (a file that must exist), and may set the task's default name and
    working directory."""

    def mark(obj: Any) -> Any:
        obj.__bgtask_kind__ = {
            "name": name or obj.__name__,
            "title": title,
            "description": description,
            "needs_payload": needs_payload,
            "warm": warm,
            "check": check,
        }
        return obj

    return mark


@dataclass(frozen=True)
class KindDef:
    """A registered kind."""

    name: str
    ref: str
    """``module:qualname``: how a worker process imports it."""
    obj: Any
    model: type[pydantic.BaseModel]
    title: str
    description: str
    is_class: bool
    wants_ctx: bool = False
    """A function kind with a ``ctx`` parameter."""
    needs_payload: bool = False
    """Runs only with input bytes made by a kernel (see :func:`kind`)."""
    warm: str | None = None
    """``module:function`` a process worker calls once its pool ran this kind (see :func:`kind`)."""
    check: KindCheck | None = None
    """The kind's own admission rule (see :func:`kind`); ``None``: the schema says it all."""

    @property
    def needs_kernel(self) -> bool:
        """Only a kernel can launch it: its payload is one only a kernel makes."""
        return self.needs_payload

    def schema(self) -> dict[str, Any]:
        """The JSON Schema of the parameters (built once: pydantic takes ~1 ms per build)."""
        cached = _schemas.get(id(self))
        if cached is None or cached[0] is not self:
            schema = self.model.model_json_schema()
            schema["title"] = self.title
            if self.description:
                schema["description"] = self.description
            cached = _schemas[id(self)] = (self, schema)
        return copy.deepcopy(cached[1])

    def validate(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        """Validated, normalised JSON parameters, or :class:`InvalidInput` naming the field.

        Strict, as JSON: a value is taken only in the JSON type the schema says (no
        ``"1"`` for 1, no ``true`` for 1), so what ``GET kinds`` documents is exactly what
        is accepted, from REST and Python callers alike."""
        if not params:
            if params is not None and not isinstance(params, Mapping):
                raise InvalidInput("params", "must be an object")
            return self._defaults()
        if not isinstance(params, Mapping):
            raise InvalidInput("params", "must be an object")
        try:
            text = json_dumps(dict(params))
        except (TypeError, ValueError) as exc:
            raise InvalidInput("params", f"must be JSON values: {exc}") from None
        try:
            value = self.model.model_validate_json(text, strict=True)
        except pydantic.ValidationError as exc:
            raise _invalid(exc) from None
        return value.model_dump(mode="json")

    def _defaults(self) -> dict[str, Any]:
        """The parameters of ``{}`` (validated once: many kinds are mostly run so)."""
        cached = _defaults.get(id(self))
        if cached is None or cached[0] is not self:
            try:
                value = self.model.model_validate_json("{}", strict=True)
            except pydantic.ValidationError as exc:
                raise _invalid(exc) from None
            cached = _defaults[id(self)] = (self, value.model_dump(mode="json"))
        return copy.deepcopy(cached[1]) if cached[1] else {}

    def run(self, ctx: TaskContext) -> Any:
        """Run the kind with ``ctx.params`` (already validated) in this thread."""
        values = dict(self.model.model_validate(ctx.params).__dict__)
        if self.is_class:
            if issubclass(self.obj, pydantic.BaseModel):
                instance = self.obj.model_validate(values)
            else:
                instance = self.obj.__new__(self.obj)
                for k, v in values.items():
                    setattr(instance, k, v)
                init = getattr(instance, "__post_init__", None)
                if init is not None:
                    init()
            return instance.run(ctx)
        if self.wants_ctx:
            values["ctx"] = ctx
        return self.obj(**values)


def _invalid(exc: pydantic.ValidationError) -> InvalidInput:
    """The first error of a parameter validation, naming its field."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()))
    return InvalidInput(f"params.{where}" if where else "params", err.get("msg", "invalid value"))


def _wants_ctx(fn: Callable[..., Any]) -> bool:
    return "ctx" in inspect.signature(fn).parameters


def _model_for(obj: Any, name: str) -> tuple[type[pydantic.BaseModel], bool]:
    config = pydantic.ConfigDict(extra="forbid")
    if inspect.isclass(obj):
        if not callable(getattr(obj, "run", None)):
            raise BgTasksError(f"kind {name!r}: a class kind needs a run(self, ctx) method")
        fields: dict[str, tuple[Any, Any]]
        if issubclass(obj, pydantic.BaseModel):
            fields = {
                k: (f.annotation, f) for k, f in obj.model_fields.items()
            }
        else:
            hints = inspect.get_annotations(obj, eval_str=True)
            fields = {
                k: (t, getattr(obj, k, ...))
                for k, t in hints.items()
                if not k.startswith("_")
            }
        return pydantic.create_model(f"{name}_params", __config__=config, **fields), True  # type: ignore[call-overload]
    if callable(obj):
        sig = inspect.signature(obj, eval_str=True)
        fields = {}
        for p in sig.parameters.values():
            if p.name == "ctx":
                continue
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            ann = Any if p.annotation is p.empty else p.annotation
            default = ... if p.default is p.empty else p.default
            fields[p.name] = (ann, default)
        return pydantic.create_model(f"{name}_params", __config__=config, **fields), False  # type: ignore[call-overload]
    raise BgTasksError(f"kind {name!r}: not a function or class: {obj!r}")


def make_kind(obj: Any, name: str | None = None) -> KindDef:
    """Build a :class:`KindDef` from a function or class (marked with :func:`kind` or not)."""
    meta = getattr(obj, "__bgtask_kind__", {}) or {}
    name = name or meta.get("name") or obj.__name__
    model, is_class = _model_for(obj, name)
    doc = inspect.getdoc(obj) or ""
    description = meta.get("description") or doc.split("\n\n")[0]
    return KindDef(
        name=name,
        ref=f"{obj.__module__}:{obj.__qualname__}",
        obj=obj,
        model=model,
        title=meta.get("title") or name,
        description=description,
        is_class=is_class,
        wants_ctx=not is_class and _wants_ctx(obj),
        needs_payload=bool(meta.get("needs_payload", False)),
        warm=meta.get("warm"),
        check=meta.get("check"),
    )


def load_ref(ref: str) -> Any:
    """Import ``module:qualname``."""
    module, _, qual = ref.partition(":")
    if not module or not qual:
        raise InvalidInput("kind", f"{ref!r} is not of the form 'module:name'")
    try:
        obj: Any = importlib.import_module(module)
        for part in qual.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise InvalidInput("kind", f"cannot import {ref!r}: {exc}") from None
    return obj


_by_ref: dict[str, KindDef] = {}


def kind_for_ref(ref: str) -> KindDef:
    """The kind at ``ref``, imported once per process (what workers use)."""
    kdef = _by_ref.get(ref)
    if kdef is None:
        obj = load_ref(ref)
        kdef = _by_ref[ref] = make_kind(obj)
    return kdef


class KindRegistry:
    """Name → :class:`KindDef`: the built-ins, entry points and configured extras."""

    def __init__(self) -> None:
        self._kinds: dict[str, KindDef] = {}
        self.site = KindSite()
        """Where the kinds' checks run (the server sets its root_dir and kernels here)."""

    def register(self, obj: Any, name: str | None = None) -> KindDef:
        kdef = obj if isinstance(obj, KindDef) else make_kind(obj, name)
        self._kinds[kdef.name] = kdef
        _by_ref.setdefault(kdef.ref, kdef)
        return kdef

    def register_ref(self, ref: str, name: str | None = None) -> KindDef:
        return self.register(load_ref(ref), name)

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> list[str]:
        """Register every kind advertised under the entry point group; returns their names."""
        names = []
        for ep in entry_points(group=group):
            names.append(self.register(ep.load(), ep.name).name)
        return names

    def get(self, name: str) -> KindDef:
        try:
            return self._kinds[name]
        except KeyError:
            raise UnknownKind(name, list(self._kinds)) from None

    def __contains__(self, name: object) -> bool:
        return name in self._kinds

    def __iter__(self) -> Iterator[KindDef]:
        return iter(sorted(self._kinds.values(), key=lambda k: k.name))

    def names(self) -> list[str]:
        return sorted(self._kinds)

    @classmethod
    def from_entry_points(cls, group: str = ENTRY_POINT_GROUP) -> KindRegistry:
        """A registry of every kind advertised under the entry point group (the
        built-ins among them, once the package is installed)."""
        reg = cls()
        reg.load_entry_points(group)
        return reg
