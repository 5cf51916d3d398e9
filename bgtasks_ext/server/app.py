"""The server extension: ``c.BgTasks.*`` traits, and the engine's life inside Jupyter Server.

The engine starts in the async start hook and stops (running tasks get their cancel
signal and a grace period) when the server stops. Store I/O and the engine's
start/stop run off the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from pathlib import Path
from typing import Any, Callable, Collection, cast

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.extension.application import ExtensionApp
from jupyter_server.utils import url_path_join
from traitlets import Bool, Dict, Float, Int, List, TraitError, Type, Unicode, default, validate

from ..core.engine import Engine, EngineConfig
from ..core.errors import InvalidInput
from ..core.ports import Executor, Store
from ..core.registry import KindSite
from ..executors.dask import LOCAL as DASK_LOCAL
from ..executors.dask import DaskExecutor, DaskOff
from ..executors.kernel import KernelExecutor
from ..executors.process import ProcessExecutor
from ..executors.thread import ThreadExecutor
from ..kinds import default_registry
from ..scheduling.service import Scheduler
from ..scheduling.workers import FIELD as WORKERS_FIELD
from ..scheduling.workers import HostWorkers, WorkerSpec
from ..store.sqlite import SQLiteStore
from .activity import ActivityReporter
from .event_hub import EventHub, EventsHandler
from .handlers import handlers
from .kernel_env import KernelEnv
from .kernels import KernelWatcher
from .schedule_handlers import schedule_routes
from .status import StatusHandler
from .owner import Owners

EXECUTORS = ("process", "thread", "dask")
"""What ``default_executor`` may be (``kernel`` cannot: a task must name its kernel;
``dask`` needs ``dask_scheduler``)."""
API_PATH = "/bgtasks/api"
PACKAGE_LOGGER = "bgtasks_ext"
"""The parent of every module logger of this package (``logging.getLogger(__name__)``)."""


class BgTasks(ExtensionApp):
    """Background tasks for Jupyter."""

    name = "bgtasks_ext"
    description = "Background tasks for Jupyter: a task engine inside the server."

    store_class = Type(
        default_value=SQLiteStore,
        klass=Store,
        help="The store class: bgtasks_ext.store.sqlite.SQLiteStore (persistent, the default) "
        "or bgtasks_ext.store.memory.MemoryStore (history lost on restart).",
    ).tag(config=True)

    store_path = Unicode(
        help="The SQLite file holding task history (default: bgtasks/tasks.sqlite under the "
        "Jupyter data dir). Its folder is created when missing.",
    ).tag(config=True)

    @default("store_path")
    def _default_store_path(self) -> str:
        return str(Path(jupyter_data_dir()) / "bgtasks" / "tasks.sqlite")

    default_executor = Unicode(
        "process",
        help="Where tasks run unless they say otherwise: 'process' (a warm pool of worker "
        "processes), 'thread' (threads in the server, for light I/O kinds) or 'dask' (the "
        "Dask cluster of dask_scheduler).",
    ).tag(config=True)

    executor = Unicode(
        "",
        help="Another name of default_executor (as the product spec spells it: "
        "c.BgTasks.executor = 'dask'); when set, it wins.",
    ).tag(config=True)

    dask_scheduler = Unicode(
        "",
        help="The Dask cluster of the 'dask' executor: a scheduler address "
        "('tcp://host:8786'), or 'local' for a LocalCluster started and stopped with the "
        "server. Empty (the default): no 'dask' executor. The workers need jupyter-bgtasks "
        "(this version) and the tasks' libraries installed.",
    ).tag(config=True)

    dask_local_workers = Int(
        2, min=1, help="Worker processes of the LocalCluster when dask_scheduler is 'local'."
    ).tag(config=True)

    workers = Int(
        0, help="Worker processes in the process pool; 0 (the default) means one per CPU."
    ).tag(config=True)

    thread_workers = Int(8, help="Threads of the thread executor.").tag(config=True)

    default_timeout = Float(
        0.0, help="Seconds a task may run unless it sets its own timeout; 0 means no limit."
    ).tag(config=True)

    log_cap = Int(
        1_000_000, help="Characters of log kept per task (the newest are kept)."
    ).tag(config=True)

    keep_tasks = Int(
        10_000, help="Finished, failed and cancelled tasks kept in history; 0 keeps all."
    ).tag(config=True)

    keep_days = Float(
        30.0, help="Days a finished, failed or cancelled task is kept; 0 keeps them forever."
    ).tag(config=True)

    keep_inputs_for = Float(
        86_400.0, min=0, allow_none=True,
        help="Seconds the input of an ended task (what %%bgtask and submit() sent: the "
        "pickled code and variables) is kept so that the task can be retried; 0 drops it as "
        "the task ends, None keeps it as long as the task. A live task's input is always kept.",
    ).tag(config=True)

    cancel_grace = Float(
        5.0,
        help="Seconds a cancelled (or stopping) task gets to stop before it is interrupted, "
        "then killed.",
    ).tag(config=True)

    max_result_bytes = Int(
        256 * 2**20, min=1,
        help="The largest result kept, in bytes (pickled). A task returning more fails with "
        "reason 'result_too_large' where it ran, and its result never travels: write big data "
        "to a file and return its path.",
    ).tag(config=True)

    max_tasks_per_worker = Int(
        0, min=0,
        help="Tasks a process worker runs before it is replaced by a fresh one (0: no limit), "
        "as Celery's worker_max_tasks_per_child. Each task's changes to its worker "
        "(environment, directory, sys.path, limits) are undone anyway.",
    ).tag(config=True)

    task_memory_limit = Int(
        0, min=0,
        help="Bytes of memory a task on the process executor may take (0: no limit). "
        "Above it, its allocations fail and the task fails with reason 'memory'.",
    ).tag(config=True)

    notebook_kernels = Int(
        1, min=0,
        help="Ready kernels kept per kernel name in each process worker for notebook jobs "
        "(the 'notebook' kind), so a job does not wait ~0.7 s for its kernel; refilled in the "
        "background after each job takes one (a kernel runs one job, then is discarded). Only "
        "after the first notebook job do workers import the Jupyter stack and start kernels. "
        "0: none kept, each job starts its own kernel.",
    ).tag(config=True)

    extra_kinds = List(
        Unicode(),
        help="More kinds, as 'module:name' references to annotated functions or classes "
        "with a run(ctx) method (besides those under the bgtasks_ext.kinds entry points).",
    ).tag(config=True)

    events_progress_interval = Float(
        0.05,
        help="Seconds between two progress messages on the events websocket (the latest "
        "progress of every moving task is sent at most this often; state changes go at once).",
    ).tag(config=True)

    events_max_buffer = Int(
        16 * 2**20,
        help="Bytes an events websocket client may fall behind for 5 seconds before it is "
        "closed (code 1013; it reconnects for a fresh snapshot).",
    ).tag(config=True)

    kernel_watch_interval = Float(
        1.0,
        help="Seconds between two looks at the server's kernels: a kernel that dies, "
        "restarts or shuts down ends its kernel-executor and kernel-scope tasks (shutdowns "
        "and restarts through the server are seen at once; a death within this time).",
    ).tag(config=True)

    report_activity = Bool(
        True,
        help="Count live tasks (pending, running, cancelling) as server activity in "
        "/api/status 'last_activity', so an idle culler (JupyterHub's) does not stop a server "
        "whose only work is its tasks. False: only requests and kernels count, as without "
        "this extension.",
    ).tag(config=True)

    activity_interval = Float(
        60.0,
        help="Seconds between two activity reports while tasks are live (task creations and "
        "state changes are reported at once). Keep it well under the culler's timeout.",
    ).tag(config=True)

    run_schedules = Bool(
        True,
        help="Fire schedules (and run the workers_at_start) on this server. With several "
        "servers on one store, the one holding the store's scheduler lease fires them; False "
        "keeps this server out of it (it still serves and edits schedules).",
    ).tag(config=True)

    lease_time = Float(
        10.0,
        min=1.0,
        help="Seconds a server's leases in the store last without renewal (renewed every "
        "third of it): when a server dies, another takes over its schedules and its tasks "
        "within this time.",
    ).tag(config=True)

    workers_at_start = List(
        Dict(),
        help="Host-lifetime workers: task specs {kind, params, name, executor?} that start "
        "with the server, one task each (key 'worker:<name>'), restarted with back-off when "
        "they fail or their worker dies, cancelled (with cancel_grace) when it stops. With "
        "several servers on one store, only the scheduler lease holder runs them.",
    ).tag(config=True)

    @validate("workers_at_start")
    def _check_workers(self, proposal: dict[str, Any]) -> list[dict[str, Any]]:
        value = list(proposal["value"])
        try:
            for i, spec in enumerate(value):
                WorkerSpec.parse(spec, f"{WORKERS_FIELD}[{i}]")
        except InvalidInput as exc:
            raise TraitError(f"BgTasks.{exc.field}: {exc.reason}") from None
        return value

    @validate("default_executor", "executor")
    def _check_executor(self, proposal: dict[str, Any]) -> str:
        value = proposal["value"]
        if value not in EXECUTORS and not (value == "" and proposal["trait"].name == "executor"):
            raise TraitError(f"BgTasks.{proposal['trait'].name}: {value!r} is not one of {list(EXECUTORS)}")
        return str(value)

    @validate("thread_workers", "log_cap")
    def _check_positive(self, proposal: dict[str, Any]) -> int:
        value = proposal["value"]
        if value < 1:
            raise TraitError(f"BgTasks.{proposal['trait'].name}: must be at least 1, not {value}")
        return int(value)

    @validate("events_progress_interval", "events_max_buffer", "kernel_watch_interval",
              "activity_interval")
    def _check_events(self, proposal: dict[str, Any]) -> Any:
        value = proposal["value"]
        if value <= 0:
            raise TraitError(f"BgTasks.{proposal['trait'].name}: must be above 0, not {value}")
        return value

    @validate("workers", "default_timeout", "keep_tasks", "keep_days", "cancel_grace")
    def _check_not_negative(self, proposal: dict[str, Any]) -> Any:
        value = proposal["value"]
        if value < 0:
            raise TraitError(f"BgTasks.{proposal['trait'].name}: must not be negative, not {value}")
        return value

    @validate("extra_kinds")
    def _check_kinds(self, proposal: dict[str, Any]) -> list[str]:
        for ref in proposal["value"]:
            module, _, name = ref.partition(":")
            if not module or not name:
                raise TraitError(f"BgTasks.extra_kinds: {ref!r} is not of the form 'module:name'")
        return list(proposal["value"])

    engine: Engine | None = None
    scheduler: Scheduler | None = None
    host_workers: HostWorkers | None = None
    events: EventHub | None = None
    kernel_watcher: KernelWatcher | None = None
    activity: ActivityReporter | None = None
    kernel_env: KernelEnv | None = None

    def make_engine(self) -> Engine:
        kinds = default_registry()
        for ref in self.extra_kinds:
            kinds.register_ref(ref)
        root_dir = self._root_dir()
        kinds.site = KindSite(root_dir=root_dir, kernel_names=self._kernel_names())
        store_class = cast("type[Store]", self.store_class)
        store: Store
        if issubclass(store_class, SQLiteStore):
            Path(self.store_path).parent.mkdir(parents=True, exist_ok=True)
            store = store_class(self.store_path)
        else:
            store = store_class()
        executors: dict[str, Executor] = {
            "process": ProcessExecutor(workers=self.workers or os.cpu_count() or 2,
                                       max_tasks_per_worker=self.max_tasks_per_worker,
                                       task_memory_limit=self.task_memory_limit or None),
            "thread": ThreadExecutor(workers=self.thread_workers),
            "kernel": KernelExecutor(),
        }
        if self.dask_scheduler:
            executors["dask"] = DaskExecutor(self.dask_scheduler, cancel_grace=self.cancel_grace,
                                             local_workers=self.dask_local_workers,
                                             max_tasks_per_worker=self.max_tasks_per_worker,
                                             task_memory_limit=self.task_memory_limit or None)
        elif (self.executor or self.default_executor) == "dask":
            raise TraitError("BgTasks.default_executor: 'dask' needs BgTasks.dask_scheduler "
                             f"(a scheduler address, or {DASK_LOCAL!r})")
        else:
            executors["dask"] = DaskOff()  # refuses dask tasks, saying how to turn it on
        config = EngineConfig(
            default_executor=self.executor or self.default_executor,
            default_timeout=self.default_timeout or None,
            log_cap=self.log_cap,
            keep=self.keep_tasks or None,
            max_age=self.keep_days * 86_400 or None,
            cancel_grace=self.cancel_grace,
            max_result_bytes=self.max_result_bytes,
            keep_inputs_for=self.keep_inputs_for,
            lease_ttl=self.lease_time,
            kind_settings={"notebook": {"kernels": self.notebook_kernels, "root_dir": root_dir}},
        )
        return Engine(store, executors, kinds, config)

    def _root_dir(self) -> str:
        """The server's ``root_dir`` (absolute): notebook jobs name their files relative to it."""
        serverapp = getattr(self, "serverapp", None)
        root = getattr(serverapp, "root_dir", None) or os.getcwd()
        return os.path.abspath(os.path.expanduser(root))

    def _kernel_names(self) -> Callable[[], Collection[str] | None] | None:
        """The kernelspec names the server can start, asked at each check (``None``: this
        server's kernelspec manager cannot say, so kernel names are not checked)."""
        manager = getattr(getattr(self, "serverapp", None), "kernel_spec_manager", None)
        find = getattr(manager, "find_kernel_specs", None)
        if find is None or asyncio.iscoroutinefunction(find):
            return None

        def names() -> Collection[str] | None:
            try:
                return frozenset(find())
            except Exception:  # noqa: BLE001 - unreadable kernelspec dirs: not checked, not a 500
                return None

        return names

    kernel_secret = Unicode(
        help="The secret that kernels started by this server use to reach the bgtasks "
        "routes (and only those). Default: a new random secret at every start.",
    ).tag(config=True)

    @default("kernel_secret")
    def _default_secret(self) -> str:
        return secrets.token_urlsafe(32)

    @validate("kernel_secret")
    def _check_secret(self, proposal: dict[str, Any]) -> str:
        value = proposal["value"]
        if len(value) < 16:
            raise TraitError("BgTasks.kernel_secret: must be at least 16 characters")
        return str(value)

    def _log_through_server(self, parent: logging.Logger | None) -> None:
        """Make the package's module loggers children of the server's log: their lines
        come out formatted as the server's, at its level (``--log-level``), instead of
        info vanishing and warnings printed bare by Python's last-resort handler.
        ``None``: give them back to the root logger."""
        if parent is not None and not isinstance(parent, logging.Logger):
            parent = getattr(parent, "logger", None)  # a LoggerAdapter
        logging.getLogger(PACKAGE_LOGGER).parent = parent or logging.getLogger()

    def initialize_settings(self) -> None:
        self._log_through_server(getattr(self.serverapp, "log", None))
        self.engine = self.make_engine()
        self.settings["bgtasks_engine"] = self.engine
        self.scheduler = Scheduler(self.engine, run_schedules=self.run_schedules,
                                   lease_ttl=self.lease_time)
        self.settings["bgtasks_scheduler"] = self.scheduler
        self.host_workers = HostWorkers(self.engine, self.workers_at_start)
        self.events = EventHub(self.engine, self.events_progress_interval, self.events_max_buffer)
        self.settings["bgtasks_events"] = self.events
        self.settings["bgtasks_kernel_secret"] = self.kernel_secret
        self.settings["bgtasks_owners"] = Owners()

    def initialize_handlers(self) -> None:
        self.handlers.extend(handlers(API_PATH))
        self.handlers.extend(schedule_routes(API_PATH))
        self.handlers.append((f"{API_PATH}/events", EventsHandler))
        self.handlers.append((f"{API_PATH}/status", StatusHandler))

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        if self.engine is None:
            # Loading failed on a bad setting: jupyter_server logged it, naming the trait
            # (no AssertionError after it to hide that line).
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.engine.start)
        assert self.events is not None and self.scheduler is not None
        assert self.host_workers is not None
        self.events.start()
        await loop.run_in_executor(None, self._start_schedules)
        self.kernel_watcher = KernelWatcher(
            self.engine, serverapp.kernel_manager, getattr(serverapp, "event_logger", None),
            self.kernel_watch_interval,
        )
        await self.kernel_watcher.start()
        # Kernels this server starts get the URL and secret in their environment, and
        # nothing else the server spawns does (terminals, workers); and the root_dir, so
        # they can name a notebook job's file relative to it.
        self.kernel_env = KernelEnv(serverapp.kernel_manager,
                                    url_path_join(serverapp.connection_url, API_PATH) + "/",
                                    self.kernel_secret, root=serverapp.root_dir)
        self.kernel_env.install()
        if self.report_activity:
            self.activity = ActivityReporter(self.engine, serverapp.web_app.settings.setdefault(
                "last_activity_times", {}), self.activity_interval)
            self.activity.start()
        self.log.info("bgtasks: engine started (store %s)", self.store_path)

    def _start_schedules(self) -> None:
        """The scheduler (its lease, its thread), the declared workers following that lease,
        and the schedules on the events websocket. A declared worker the engine refuses
        (unknown kind, bad params) is logged, naming its setting; the rest start."""
        assert self.scheduler is not None and self.host_workers is not None
        assert self.events is not None
        try:
            self.host_workers.check()
        except InvalidInput as exc:
            self.log.error("bgtasks: c.BgTasks.%s: %s (no declared worker runs)", exc.field, exc.reason)
            assert self.engine is not None
            self.host_workers = HostWorkers(self.engine, [])
        self._unfollow_workers = self.host_workers.follow(self.scheduler)
        self.events.watch_schedules(self.scheduler)
        self.scheduler.start()

    def _stop_schedules(self) -> None:
        assert self.scheduler is not None
        self.scheduler.stop()
        if self.host_workers is not None:
            self.host_workers.stop()

    async def stop_extension(self) -> None:
        if self.activity is not None:
            await self.activity.stop()
        if self.kernel_env is not None:
            self.kernel_env.uninstall()
        if self.kernel_watcher is not None:
            await self.kernel_watcher.stop()
        if self.events is not None:
            self.events.stop()
        if self.scheduler is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._stop_schedules)
        if self.engine is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.engine.stop)
            self.log.info("bgtasks: engine stopped")
        self._log_through_server(None)
