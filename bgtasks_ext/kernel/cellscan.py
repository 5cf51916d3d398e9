"""The scopes of a cell: which names it reads before binding, and which it binds.

Used by :func:`bgtasks_ext.kernel.cellio.analyze`. Module-level statements are
walked in execution order, tracking the names that are *certainly* bound at each
point (both arms of an ``if``; never a loop body or a ``try``). Nested scopes
(functions, lambdas, classes, comprehensions) are reduced to their free names:
those of a class body or a comprehension are read at once, those of a function
when it is called, later.
"""

from __future__ import annotations

import ast
from collections import deque

_COMPS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
_SCOPES = (*_DEFS, ast.ClassDef, *_COMPS)
_TRY = (ast.Try, getattr(ast, "TryStar", ast.Try))  # except* arrived in 3.11


class ModuleScan:
    """Walks module-level statements in execution order, tracking certain bindings."""

    def __init__(self) -> None:
        self.bound: set[str] = set()
        self.reads: dict[str, None] = {}
        self.writes: dict[str, None] = {}
        self.assigned: set[str] = set()
        """Names bound by something other than ``import`` (an ``import`` alone makes no output)."""
        self.deferred: dict[str, None] = {}

    def bind(self, name: str, *, imported: bool = False) -> None:
        self.bound.add(name)
        self.writes[name] = None
        if not imported:
            self.assigned.add(name)

    def load(self, name: str) -> None:
        if name not in self.bound:
            self.reads[name] = None

    def run(self, body: list[ast.stmt]) -> None:
        for stmt in body:
            self.stmt(stmt)

    def branch(self, *bodies: list[ast.stmt]) -> None:
        """Run alternative bodies; afterwards only what all of them bound is certain."""
        before = set(self.bound)
        results = []
        for body in bodies:
            self.bound = set(before)
            self.run(body)
            results.append(self.bound)
        self.bound = before | set.intersection(*results) if results else before

    def maybe(self, *bodies: list[ast.stmt]) -> None:
        """Run bodies that may not run at all (loop bodies, ``try``)."""
        before = set(self.bound)
        for body in bodies:
            self.run(body)
        self.bound = before

    def stmt(self, node: ast.stmt) -> None:
        if isinstance(node, ast.Assign):
            self.expr(node.value)
            for target in node.targets:
                self.target(target)
        elif isinstance(node, ast.AugAssign):
            self.expr(node.value)
            if isinstance(node.target, ast.Name):
                self.load(node.target.id)
            self.target(node.target)
        elif isinstance(node, ast.AnnAssign):
            if node.value is not None:
                self.expr(node.value)
                self.target(node.target)
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            self.expr(node.iter)
            before = set(self.bound)
            self.target(node.target)
            self.run(node.body)
            self.run(node.orelse)
            self.bound = before
        elif isinstance(node, ast.While):
            self.expr(node.test)
            self.maybe(node.body, node.orelse)
        elif isinstance(node, ast.If):
            self.expr(node.test)
            self.branch(node.body, node.orelse)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                self.expr(item.context_expr)
                if item.optional_vars is not None:
                    self.target(item.optional_vars)
            self.run(node.body)
        elif isinstance(node, _TRY):
            self.maybe(node.body, node.orelse)
            for handler in node.handlers:
                if handler.type is not None:
                    self.expr(handler.type)
                before = set(self.bound)
                if handler.name:
                    self.bound.add(handler.name)  # unbound again when the handler ends
                self.run(handler.body)
                self.bound = before
            self.run(node.finalbody)
        elif isinstance(node, ast.Match):
            self.expr(node.subject)
            for case in node.cases:
                before = set(self.bound)
                for sub in ast.walk(case.pattern):
                    if isinstance(sub, (ast.MatchValue, ast.MatchClass)):
                        self.expr(sub.value if isinstance(sub, ast.MatchValue) else sub.cls)
                    name = getattr(sub, "name", None) or getattr(sub, "rest", None)
                    if isinstance(name, str):
                        self.bind(name)
                if case.guard is not None:
                    self.expr(case.guard)
                self.run(case.body)
                self.bound = before
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name != "*":
                    self.bind(alias.asname or alias.name.split(".")[0], imported=True)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            self.scope(node)
            self.bind(node.name)
        elif isinstance(node, ast.Delete):
            for target in node.targets:
                self.expr(target)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            pass
        else:
            self.expr(node)

    def target(self, node: ast.expr) -> None:
        """An assignment target: subscripts and attributes read, names bind."""
        if isinstance(node, ast.Name):
            self.bind(node.id)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for elt in node.elts:
                self.target(elt)
        elif isinstance(node, ast.Starred):
            self.target(node.value)
        else:
            self.expr(node)

    def expr(self, node: ast.AST) -> None:
        """Loads in ``node`` in evaluation order; nested scopes via :meth:`scope`."""
        if isinstance(node, _SCOPES):
            self.scope(node)
            return
        if isinstance(node, ast.NamedExpr):
            self.expr(node.value)
            self.target(node.target)
            return
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                self.load(node.id)
            elif isinstance(node.ctx, ast.Del):
                self.bound.discard(node.id)
            else:
                self.bind(node.id)
            return
        for child in ast.iter_child_nodes(node):
            self.expr(child)

    def scope(self, node: ast.AST) -> None:
        """A nested scope: what runs now is read now; function bodies are deferred."""
        for part in _evaluated_now(node):
            self.expr(part)
        free, walrus, globals_ = _free_names(node)
        for name in walrus + globals_:
            self.bind(name)
        if isinstance(node, _DEFS):
            self.deferred.update(dict.fromkeys(free))
        else:
            for name in free:
                self.load(name)


def _all_args(args: ast.arguments) -> list[ast.arg]:
    extra = [a for a in (args.vararg, args.kwarg) if a is not None]
    return args.posonlyargs + args.args + args.kwonlyargs + extra


def _evaluated_now(node: ast.AST) -> list[ast.AST]:
    """The parts of a scope-making node that run in the enclosing scope, at once."""
    now: list[ast.AST] = []
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        now += node.decorator_list
    if isinstance(node, _DEFS):
        args = node.args
        now += [d for d in args.defaults + args.kw_defaults if d is not None]
        if not isinstance(node, ast.Lambda):
            now += [a.annotation for a in _all_args(args) if a.annotation is not None]
            now += [node.returns] if node.returns is not None else []
    elif isinstance(node, ast.ClassDef):
        now += node.bases + [k.value for k in node.keywords]
    elif isinstance(node, _COMPS):
        now.append(node.generators[0].iter)
    return now


def _scope_body(node: ast.AST) -> list[ast.AST]:
    """The parts of a scope-making node that run in its own scope."""
    if isinstance(node, ast.Lambda):
        return [node.body]
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return list(node.body)
    assert isinstance(node, _COMPS)
    gens = node.generators
    body: list[ast.AST] = [g.target for g in gens]
    body += [c for g in gens for c in g.ifs] + [g.iter for g in gens[1:]]
    body += [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
    return body


def _free_names(node: ast.AST) -> tuple[list[str], list[str], list[str]]:
    """``(free, walrus, globals)`` of a nested scope.

    *free*: names its body loads without binding them (resolved further out).
    *walrus*: ``:=`` targets of a comprehension, which bind in the scope around it.
    *globals*: names bound through ``global`` declarations (module bindings).
    """
    bound: set[str] = set()
    if isinstance(node, _DEFS):
        bound.update(a.arg for a in _all_args(node.args))
    declared: set[str] = set()
    loads: dict[str, None] = {}
    walrus: dict[str, None] = {}
    globals_: dict[str, None] = {}
    stack = deque(_scope_body(node))
    while stack:
        sub = stack.popleft()
        if isinstance(sub, ast.Global):
            declared.update(sub.names)
        elif isinstance(sub, _SCOPES):
            stack.extend(_evaluated_now(sub))
            free, inner_walrus, inner_globals = _free_names(sub)
            loads.update(dict.fromkeys(free))
            globals_.update(dict.fromkeys(inner_globals))
            if isinstance(node, _COMPS):
                walrus.update(dict.fromkeys(inner_walrus))
            else:
                bound.update(inner_walrus)
            if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                bound.add(sub.name)
            continue
        elif isinstance(sub, ast.Name):
            if isinstance(sub.ctx, ast.Load):
                loads[sub.id] = None
            else:
                bound.add(sub.id)
        elif isinstance(sub, (ast.Import, ast.ImportFrom)):
            bound.update(a.asname or a.name.split(".")[0] for a in sub.names if a.name != "*")
        elif isinstance(sub, ast.ExceptHandler) and sub.name:
            bound.add(sub.name)
        elif isinstance(sub, ast.NamedExpr) and isinstance(node, _COMPS):
            walrus[sub.target.id] = None
            stack.append(sub.value)
            continue
        stack.extend(ast.iter_child_nodes(sub))
    globals_.update(dict.fromkeys(n for n in declared if n in bound))
    free = [n for n in loads if (n not in bound or n in declared) and n not in walrus]
    return free, list(walrus), list(globals_)
