"""``%%bgtask``, ``%bgtask EXPR`` and ``%bgtasks``: the notebook's way in.

A magic only turns a cell and its options into one ``POST tasks`` and a widget, then
gives control back: the task's life is watched by the handle's events thread, which
queues the cell's outputs when it ends; they land in the user namespace between cells
(:mod:`.landing`). Re-running a ``%%bgtask`` cell supersedes the task it launched
before (the cell is known by the id JupyterLab sends with each execute request).

``%bgtask --notebook PATH [-p NAME=VALUE ...]`` runs a notebook file as a job (the
``notebook`` kind, :mod:`.notebook_jobs`): nothing of this kernel is sent, only the
path (made relative to the server's root) and the parameters.

With ``--every S`` or ``--cron EXPR`` the magic makes a schedule instead (``POST
schedules``, :mod:`.schedules`): the same pickled job, frozen now, for every run; no
run's outputs land here. Re-running such a cell disables the schedule it made before.

Mistakes (a bad option, an unpicklable input, no server) raise IPython's
``UsageError``: shown as one line without a traceback (the traceback would be of this
module, not of the user's code), and an error still, so Run All, nbclient and
papermill stop there as they do for any failing cell.
"""

from __future__ import annotations

import argparse
import contextlib
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import MagicHelpFormatter, argument, magic_arguments, parse_argstring
from IPython.display import display

from ..core.errors import BgTasksError
from ..kinds.code import CodeJob
from .api import attach, create_schedule, kernel_id, launch, launch_notebook
from .cellio import analyze, find_unpicklable, select_inputs
from .client import Client, ServerError, get_client
from .handle import TaskHandle
from .landing import Landing, landing_for
from .notebook_jobs import parse_parameter, root_relative, split_words, unquote
from .outputs import CellOutputs

if TYPE_CHECKING:
    from .schedules import ScheduleHandle

VALUE_OPTIONS = ("--key", "--in", "--out", "--executor", "--scope", "--timeout", "--retries",
                 "--every", "--cron", "--tz", "--notebook", "--kernel", "--name")
NOTEBOOK_ONLY = {"parameters": "-p", "kernel": "--kernel", "task_name": "--name"}
"""Options of the notebook form only (dest -> option), refused elsewhere by name."""
NOT_WITH_NOTEBOOK = {"inputs": "--in", "outputs": "--out", "every": "--every", "cron": "--cron",
                     "tz": "--tz"}
"""Options of a code task that a notebook job has no use for (dest -> option)."""
OPTION_OF_FIELD = {"every": "--every", "cron": "--cron", "timezone": "--tz", "timeout": "--timeout",
                   "retries": "--retries", "executor": "--executor", "name": "NAME",
                   "payload": "the cell's inputs"}
"""The magic's name for each field of a ``POST schedules`` body the server may refuse."""
FLAG_OPTIONS = ("--no-widget", "--help", "-h")
_OPTION = re.compile(r"""\s*(--?[A-Za-z][\w-]*)(?:(=|\s+)("[^"]*"|'[^']*'|\S+))?""")


class _HelpFormatter(MagicHelpFormatter):
    """IPython's help layout as plain text: IPython's own opens with an RST ``::`` block,
    wraps placeholders in ``<>`` for RST, and derives the usage from the arguments, which
    cannot say where ``%bgtask``'s expression goes (it is peeled off before argparse)."""

    def add_usage(self, usage: Any, actions: Any, groups: Any, prefix: Any = None) -> None:
        super().add_usage(usage, actions, groups, "")

    def _format_action_invocation(self, action: argparse.Action) -> str:
        return argparse.HelpFormatter._format_action_invocation(self, action)


def _usage(*forms: str) -> Any:
    """Give a magic ``forms`` as the usage lines of its help (``--help`` and ``%magic?``):
    applied above ``@magic_arguments()``, once its parser exists."""
    def apply(func: Any) -> Any:
        parser = func.parser
        parser.formatter_class = _HelpFormatter
        text = "Usage:\n" + "".join(f"  {form}\n" for form in forms)
        parser.usage = text.replace("%", "%%")  # argparse %-formats the usage
        func.__doc__ = parser.format_help()
        return func
    return apply


def _names(text: str | None) -> list[str] | None:
    """``"a, b"`` -> ``["a", "b"]``; refuses what cannot be a variable name."""
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if not n.isidentifier()]
    if bad:
        raise UsageError(f"not a variable name: {bad[0]!r}")
    return names


def split_expression(line: str) -> tuple[str, str]:
    """``%bgtask [options] EXPR`` -> ``(options, EXPR)``.

    The expression is kept verbatim (no shell-style splitting of its quotes), so the
    options are peeled off its front one by one.
    """
    pos = 0
    while True:
        match = _OPTION.match(line, pos)
        if match is None or not match.group(1).startswith("--") and match.group(1) != "-h":
            break
        option = match.group(1)
        if option in VALUE_OPTIONS or "=" in (match.group(2) or ""):
            pos = match.end()
        else:  # a flag (or an unknown option, left to argparse to refuse)
            pos = match.start(1) + len(option)
    return line[:pos].strip(), line[pos:].strip()


def _default_name(source: str) -> str:
    first = next((ln.strip() for ln in source.splitlines() if ln.strip() and not ln.strip().startswith("#")), "")
    return first if len(first) <= 60 else first[:59] + "…"


@contextlib.contextmanager
def _unpicklable_named(job: CodeJob) -> Iterator[None]:
    """Pickling ``job`` failed inside: raise the error that names the input at fault
    (:class:`UnpicklableInput`); the server's refusals pass through as they are."""
    try:
        yield
    except BgTasksError:
        raise
    except Exception as exc:
        culprit = find_unpicklable(job.inputs)
        if culprit is None:
            raise
        raise culprit from exc


@magics_class
class BgTaskMagics(Magics):
    """The bgtasks magics (registered by ``%load_ext bgtasks_ext``)."""

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell, **kwargs)
        self._by_cell: dict[str, tuple[TaskHandle, CellOutputs]] = {}
        """The last task each cell launched (and its end hook), by cell id."""
        self._schedule_of_cell: dict[str, ScheduleHandle] = {}
        """The last schedule each cell made, by cell id."""

    @property
    def ip(self) -> InteractiveShell:
        assert self.shell is not None, "the magics are registered on a shell"
        return self.shell

    @_usage("%%bgtask [NAME] [options]", "%bgtask [options] EXPR",
            "%%bgtask [NAME] --every S | --cron EXPR [--tz ZONE] [options]",
            "%bgtask --notebook PATH [-p NAME=VALUE ...] [--kernel K] [--name N] [options]")
    # The line is Python code and options as typed: no {expr}/$name expansion (as %timeit).
    @no_var_expand
    @magic_arguments()
    @argument("name", nargs="*", metavar="NAME", help="The task's name, one or more words "
              "(default: the cell's first line; the line magic's is its expression).")
    @argument("--key", help="Singleton key: while a live task has this key, return it instead.")
    @argument("--in", dest="inputs", metavar="A,B",
              help="Send only these variables (default: every name the cell reads).")
    @argument("--out", dest="outputs", metavar="C,D",
              help="Set only these variables back (default: every name the cell assigns, "
              "except names bound only by import).")
    @argument("--executor", choices=("process", "kernel", "dask"),
              help="process (default: a worker process), kernel (a thread in this kernel "
              "that sees live objects), dask (the server's Dask cluster: "
              "c.BgTasks.dask_scheduler).")
    @argument("--scope", choices=("server", "kernel"),
              help="kernel: cancel the task when this kernel shuts down or restarts.")
    @argument("--timeout", type=float, metavar="S",
              help="Seconds the task may run; then it is stopped and fails (reason timeout).")
    @argument("--retries", type=int, metavar="N", help="Runs again on failure, up to N times.")
    @argument("--every", type=float, metavar="S",
              help="Make a schedule: run the code every S seconds (>= 0.1) with its inputs "
              "as they are now; runs' outputs are not set here.")
    @argument("--cron", metavar="EXPR",
              help="Make a schedule on a 5-field cron expression, quoted: '0 9 * * 1-5'.")
    @argument("--tz", metavar="ZONE", help="IANA time zone of --cron (default UTC), "
              "e.g. Europe/Berlin.")
    @argument("--notebook", metavar="PATH", help="%%bgtask only: run the notebook file PATH "
              "as a job (relative to this kernel's working directory, under the server's "
              "root); its executed copy is written beside it.")
    @argument("-p", dest="parameters", action="append", metavar="NAME=VALUE",
              help="With --notebook, repeatable: set NAME in a cell after the notebook's cell "
              "tagged parameters; VALUE is a Python literal (3, 0.5, 'x', [1, 2]), else a "
              "string.")
    @argument("--kernel", metavar="K", help="With --notebook: the kernel to run it with "
              "(default: the notebook's own, else python3).")
    @argument("--name", dest="task_name", metavar="N",
              help="With --notebook: the task's name (default: the file name).")
    @argument("--no-widget", action="store_true", help="Do not display the task widget.")
    @argument("-h", "--help", action="store_true", help="Show this help.")
    @line_cell_magic
    def bgtask(self, line: str, cell: str | None = None) -> TaskHandle | ScheduleHandle | None:
        """Run code in the background and return at once, showing the task's widget.

        %%bgtask runs the cell below it: the variables it reads are sent along, the
        ones it assigns are set here when it finishes (between cells). %bgtask runs
        one expression, usually a call, and returns its handle: h = %bgtask f(x).

        Either way _ becomes the task's handle (_.wait(), _.result()).
        Re-running a %%bgtask cell cancels the task it launched before, if it still
        runs; that task's outputs never land.

        With --every or --cron it makes a schedule: the code runs in a worker at each
        fire time with its inputs as they are now, and _ becomes the schedule's handle
        (_.disable(), _.runs()). Runs' outputs are not set here.

        %bgtask --notebook PATH runs a notebook file as a job, with -p NAME=VALUE
        parameters: h = %bgtask --notebook report.ipynb -p n=3; h.result() names the
        executed copy written beside it.
        """
        if cell is None and _notebook_form(line):
            return self._notebook(line)
        magic = "%bgtask" if cell is None else "%%bgtask"
        try:
            if cell is None:
                options, expr = split_expression(line)
                args = parse_argstring(self.bgtask, options)
                if args.name:
                    raise UsageError(f"unexpected argument {args.name[0]!r}")
                args.name = _default_name(expr)
                source = expr
            else:
                args = parse_argstring(self.bgtask, line)
                args.name = " ".join(args.name) or _default_name(cell)
                source = cell
            if args.help:
                print(self.bgtask.__doc__)
                return None
            _refuse_notebook_options(args)
            if cell is None and not source:
                raise UsageError("give an expression to run, e.g. %bgtask f(x)")
            handle = self._launch(args, source, expression=cell is None)
        except (UsageError, BgTasksError) as exc:
            raise _refusal(magic, exc) from None
        except SystemExit:
            return None
        self.ip.user_ns["_"] = handle
        if cell is not None:
            return None  # a cell magic's value is displayed: the widget is shown already
        handle.mark_shown()  # h = %bgtask f(x) gives the handle; shown once either way
        return handle

    def _notebook(self, line: str) -> TaskHandle | None:
        """``%bgtask --notebook PATH [-p NAME=VALUE ...]``: a ``notebook`` task; its
        handle is returned (and is ``_``), its widget shown."""
        try:
            args = self.bgtask.parser.parse_args(split_words(line))
            if args.help:
                print(self.bgtask.__doc__)
                return None
            if args.notebook is None:
                raise UsageError("-p: goes with --notebook PATH (the notebook it sets "
                                 "parameters of)")
            if args.name:
                raise UsageError(f"unexpected argument {args.name[0]!r} (one notebook: "
                                 "--notebook PATH)")
            for dest, option in NOT_WITH_NOTEBOOK.items():
                if getattr(args, dest) is not None:
                    raise UsageError(f"{option}: not with --notebook (a notebook job sends "
                                     "nothing of this kernel and sets nothing back; it is one "
                                     "run)")
            if args.executor == "kernel":
                raise UsageError("--executor kernel: not with --notebook: a notebook job "
                                 "runs in a kernel of its own, started by a worker")
            parameters: dict[str, Any] = {}
            for text in args.parameters or []:
                key, value = parse_parameter(text)
                if key in parameters:
                    raise UsageError(f"-p: {key} is given twice")
                parameters[key] = value
            client = get_client()  # no server: say that first
            path = root_relative(unquote(args.notebook), "--notebook")
            handle = launch_notebook(
                path, parameters, kernel_name=_unquote(args.kernel),
                name=_unquote(args.task_name), key=args.key, executor=args.executor,
                scope=args.scope, timeout=args.timeout, retries=args.retries, client=client)
        except (UsageError, BgTasksError) as exc:
            raise _refusal("%bgtask", exc) from None
        except SystemExit:
            return None
        if not args.no_widget:
            display(handle.widget)
        handle.mark_shown()
        self.ip.user_ns["_"] = handle
        return handle

    def _launch(self, args: Any, source: str, *,
                expression: bool) -> TaskHandle | ScheduleHandle:
        scheduled = args.every is not None or args.cron is not None
        args.cron, args.tz = _unquote(args.cron), _unquote(args.tz)
        if scheduled or args.tz is not None:
            _check_schedule_options(args)
        executor = args.executor or None
        shell = self.ip
        code = shell.transform_cell(source) if executor == "kernel" else source
        try:
            reads, writes = analyze(code)
            # What parses may still not compile as a module: `return`, `yield` or a
            # top-level `await` (IPython runs those in a cell; a task runs plain Python).
            compile(code, "<bgtask>", "exec", dont_inherit=True)
        except SyntaxError as exc:
            hint = "" if executor == "kernel" else " (magics and !commands run only with --executor kernel)"
            if expression:
                raise UsageError(f"the expression is not valid Python: {exc.msg}{hint}") from None
            line = (exc.lineno or 1) + 1  # as the notebook numbers it: the magic is line 1
            raise UsageError(f"the cell is not valid Python: {exc.msg} (line {line}){hint}") from None
        outputs = _names(args.outputs)
        if outputs is None:
            outputs = [] if expression else writes
        # A kernel-executor cell sets its names here as it runs: none is pickled back.
        sent = [] if executor == "kernel" else outputs
        job = CodeJob(mode="cell", source=code, outputs=sent, is_cell=not expression,
                      filename=f"<bgtask {args.name}>")
        if executor != "kernel":
            wanted = _names(args.inputs)
            missing = [n for n in wanted or [] if n not in shell.user_ns]
            if missing:
                raise UsageError(f"--in {missing[0]}: no such variable in this kernel")
            job.inputs = select_inputs(reads if wanted is None else wanted, shell.user_ns,
                                       shell.user_ns_hidden)
        if scheduled:
            return self._schedule(args, job, expression)
        landing = self._landing()
        hook = CellOutputs(landing, names=outputs if executor == "kernel" and not expression else None,
                           wanted=_names(args.outputs) or [])
        with _unpicklable_named(job):
            handle = launch(job, name=args.name or None, key=args.key,
                            executor=executor, scope=args.scope, timeout=args.timeout,
                            retries=args.retries, namespace=shell.user_ns, on_finish=hook)
        if not expression:
            self._supersede(_cell_id(shell), handle, hook, landing)
        if args.no_widget:
            handle.mark_shown()
        else:
            display(handle.widget)
        return handle

    def _schedule(self, args: Any, job: CodeJob, expression: bool) -> ScheduleHandle:
        """``POST schedules`` with ``job`` frozen now; a refusal names the option."""
        try:
            with _unpicklable_named(job):
                handle = create_schedule(job, every=args.every, cron=args.cron, tz=args.tz,
                                         name=args.name or None, executor=args.executor,
                                         timeout=args.timeout, retries=args.retries)
        except ServerError as exc:
            raise UsageError(_option_message(exc)) from None
        handle.note = _schedule_note(job, handle.id, expression)
        cell_id = None if expression else _cell_id(self.ip)
        if cell_id is not None:
            previous = self._schedule_of_cell.get(cell_id)
            self._schedule_of_cell[cell_id] = handle
            if previous is not None and not previous.deleted and previous.enabled:
                try:
                    previous.disable()
                    handle.note += f" Replaces schedule {previous.id} of this cell (now disabled)."
                except BgTasksError:
                    pass  # deleted meanwhile, or the server is gone: nothing to stop
        if args.no_widget:
            handle.mark_shown()
        else:
            display(handle.widget)
        return handle

    def _landing(self) -> Landing:
        landing = landing_for(self.ip)
        assert landing is not None, "a shell always has a landing"
        return landing

    def _supersede(self, cell_id: str | None, handle: TaskHandle, hook: CellOutputs,
                   landing: Landing) -> None:
        """Remember ``handle`` as ``cell_id``'s task; the cell's previous task, if it
        still runs (or its outputs have not landed yet), is cancelled and its outputs
        dropped. Done after the launch: a re-run that fails to launch changes nothing."""
        if cell_id is None:  # a client that sends no cell ids (a console): nothing to match
            return
        previous = self._by_cell.get(cell_id)
        self._by_cell[cell_id] = (handle, hook)
        if previous is None:
            return
        old, old_hook = previous
        old_id = _known_id(old)
        if old is handle or (old_id and old_id == _known_id(handle)):
            return  # the same task again (a live --key)
        if old.done() and not (old_id and landing.pending(old_id)):
            return  # it ended and its outputs landed already: nothing to undo
        old_hook.superseded = True
        if old_id:
            landing.supersede(old_id)
        old_hook.add_note("superseded by a re-run of its cell: its outputs are dropped")
        hook.add_note(f"superseded task {old_id}" if old_id else "superseded the cell's previous task")
        try:
            old.cancel()
        except BgTasksError:
            pass  # the server is gone or the task ended: its outputs are dropped all the same

    @_usage("%bgtasks [--all]", "%bgtasks attach ID", "%bgtasks schedules")
    @magic_arguments()
    @argument("action", nargs="?", choices=("attach", "schedules"), metavar="attach|schedules",
              help="attach: show one task's widget; schedules: a live table of every schedule.")
    @argument("id", nargs="?", metavar="ID", help="The task id (for attach).")
    @argument("--all", action="store_true", help="Every task, not only this kernel's.")
    @argument("-h", "--help", action="store_true", help="Show this help.")
    @line_magic
    def bgtasks(self, line: str) -> TaskHandle | None:
        """Show a live table of this kernel's tasks (--all: everyone's), or with
        attach ID the widget of one task (_ becomes its handle). An attached
        %%bgtask cell sets its outputs here when it ends (e.g. after a restart).
        %bgtasks schedules shows every schedule on the server, live, with an
        Enable/Disable button each."""
        try:
            args = parse_argstring(self.bgtasks, line)
            if args.help:
                print(self.bgtasks.__doc__)
                return None
            client = get_client()
            if args.action == "attach":
                if not args.id:
                    raise UsageError("attach needs a task id: %bgtasks attach ID")
                handle = attach(args.id)
                display(handle.widget)
                handle.mark_shown()
                self.ip.user_ns["_"] = handle
                return handle
            if args.id:
                raise UsageError(f"unexpected argument {args.id!r}")
            if args.action == "schedules":
                from .schedules import SchedulesTable

                display(SchedulesTable(client))
                return None
            display(_table(client, None if args.all else kernel_id()))
        except (UsageError, BgTasksError) as exc:
            raise _refusal("%bgtasks", exc) from None
        except SystemExit:
            return None
        return None


def _notebook_form(line: str) -> bool:
    """Whether a ``%bgtask`` line is the notebook form: it has ``--notebook``, or starts
    with ``-p`` (which only that form takes)."""
    words = split_words(line)
    return bool(words) and (words[0] == "-p" or any(
        w == "--notebook" or w.startswith("--notebook=") for w in words))


def _refuse_notebook_options(args: Any) -> None:
    """``--kernel``/``--name``/``-p`` on a cell or an expression: refused by name."""
    for dest, option in NOTEBOOK_ONLY.items():
        if getattr(args, dest) is not None:
            raise UsageError(f"{option}: goes with %bgtask --notebook PATH")
    if args.notebook is not None:
        raise UsageError("--notebook: a line magic's option: %bgtask --notebook PATH "
                         "(alone on its line)")


def _check_schedule_options(args: Any) -> None:
    """Refuse, naming the option, what a schedule cannot do (before anything is sent)."""
    if args.every is not None and args.cron is not None:
        raise UsageError("--every and --cron: give one of them (seconds, or a cron expression)")
    if args.tz is not None and args.cron is None:
        raise UsageError("--tz: goes with --cron (the time zone its fields are read in)")
    if args.executor == "kernel":
        raise UsageError("--executor kernel: not with --every/--cron: a schedule's runs happen "
                         "in a worker ('process'), since this kernel may be busy or gone when "
                         "one fires")
    if args.key is not None:
        raise UsageError("--key: not with --every/--cron: a schedule already runs one run at a "
                         "time (a fire time while its last run is live is skipped)")
    if args.scope == "kernel":
        raise UsageError("--scope kernel: not with --every/--cron: a schedule outlives this "
                         "kernel; stop it with its Disable button, _.disable() or _.delete()")


def _unquote(text: str | None) -> str | None:
    """``'0 9 * * 1-5'`` -> ``0 9 * * 1-5``: IPython's argument splitting keeps the quotes
    that hold a cron expression's fields together."""
    if text is not None and len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _option_message(exc: ServerError) -> str:
    """The server's 400 (``cron: 'x' must have five fields...``) as the magic's option
    (``--cron: 'x' must have five fields...``)."""
    text = str(exc)
    field = exc.field or ""
    option = OPTION_OF_FIELD.get(field.split(".")[0])
    if option is None:
        return text
    if text.startswith(f"{field}: "):
        text = text[len(field) + 2:]
    return f"{option}: {text}"


def _schedule_note(job: CodeJob, schedule_id: str, expression: bool) -> str:
    inputs = ", ".join(sorted(job.inputs))
    frozen = (f"Each run uses the inputs as they were when the schedule was made ({inputs})."
              if inputs else "Each run runs the code as it was when the schedule was made.")
    outputs = (f" Its outputs ({', '.join(job.outputs)}) are not set in this notebook:"
               if job.outputs else " Nothing is set in this notebook:")
    if expression:
        outputs = " Its value is not set in this notebook:"
    return (frozen + outputs + " each run's result is in the Background Tasks panel and at "
            f"GET tasks?schedule_id={schedule_id}.")


def _known_id(handle: TaskHandle) -> str:
    """The handle's task id without waiting: "" while its input is still being sent
    (or if sending it failed)."""
    if handle.sending_now:
        return ""
    try:
        return handle.id
    except Exception:
        return ""


def _cell_id(shell: Any) -> str | None:
    """The id of the cell being run, as JupyterLab and Notebook 7 send it in the execute
    request's metadata (``cellId``); None for clients that send none (nbclient, consoles)."""
    kernel = getattr(shell, "kernel", None)
    if kernel is None:
        return None
    try:
        parent = kernel.get_parent("shell") or {}
    except Exception:
        return None
    cell_id = (parent.get("metadata") or {}).get("cellId")
    return str(cell_id) if cell_id else None


def _table(client: Client, kernel_id: str | None) -> Any:
    from .widgets import TasksTable

    return TasksTable(client, kernel_id=kernel_id)


def _refusal(magic: str, exc: BaseException) -> UsageError:
    """One line naming the magic: IPython shows a ``UsageError`` without a traceback,
    and the cell still fails (Run All and nbclient stop)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return UsageError(f"{magic}: {text}")


def load_ipython_extension(ip: Any) -> None:
    ip.register_magics(BgTaskMagics)
    landing_for(ip)  # hooked now, so the cell that loads the extension counts as running


def unload_ipython_extension(ip: Any) -> None:
    """Forget the magics (``%unload_ext bgtasks_ext``); running tasks go on, and the
    outputs of their cells still land."""
    for kind in ("line", "cell"):
        table = ip.magics_manager.magics[kind]
        for name in ("bgtask", "bgtasks"):
            table.pop(name, None)
