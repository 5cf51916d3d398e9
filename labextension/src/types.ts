/**
 * The REST and websocket JSON of jupyter-bgtasks, exactly as the server sends it.
 *
 * Mirrors `bgtasks_ext/server/replies.py` (the `...Out` reply models, named here as the
 * OpenAPI document names them) and the events messages of `docs/rest.md`. Keep the two
 * in step: a key added there is added here.
 */

/** Every state a task can be in (`bgtasks_ext.core.states.State`). */
export type State =
  'pending' | 'running' | 'cancelling' | 'finished' | 'failed' | 'cancelled';

/** The panel tab a state belongs to (`bgtasks_ext.core.states.Category`). */
export type Category = 'pending' | 'failed' | 'finished';

/** The states of the `pending` category: the task may still run or is running. */
export const LIVE_STATES: ReadonlySet<State> = new Set<State>([
  'pending',
  'running',
  'cancelling'
]);

/** `Progress`: `fraction` is null when `total` is unknown. */
export interface IProgress {
  current: number;
  total: number | null;
  fraction: number | null;
  message: string;
}

/** `TaskError`: `reason` is set when the engine decided the failure. */
export interface ITaskError {
  type: string;
  message: string;
  traceback: string;
  reason: string | null;
  /** What the task's code adds: a notebook job's `executed_copy` and failing `cell`. */
  data?: Record<string, unknown> | null;
}

/** `Origin`: the kernel and notebook a task was launched from. */
export interface IOrigin {
  kernel_id: string | null;
  path: string | null;
  /** The task a retry runs again (set by the server only). */
  retry_of: string | null;
}

/** `Task`: every key always present; times are ISO 8601 UTC strings. */
export interface ITask {
  id: string;
  name: string;
  kind: string;
  params: { [key: string]: any };
  state: State;
  category: Category;
  progress: IProgress;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  run_on: string | null;
  owner: string;
  origin: IOrigin;
  key: string | null;
  scope: 'server' | 'kernel';
  executor: string;
  schedule_id: string | null;
  attempt: number;
  retries: number;
  timeout: number | null;
  error: ITaskError | null;
  result_preview: any;
  /**
   * A line about the task set by whoever launched it (`PUT tasks/{id}/note`), e.g.
   * `superseded task X` or `outputs set: a, b`; null when there is none. Missing from
   * servers older than the note (read it as `task.note ?? null`).
   */
  note: string | null;
  /**
   * The fire time a schedule's run is for (ISO), so lateness shows; null for other
   * tasks. Missing from servers older than schedules.
   */
  scheduled_for?: string | null;
  /**
   * Where the latest attempt runs or ran, for an executor with more than one place: the
   * Dask worker's address for `dask`; null otherwise. Missing from older servers.
   */
  placement?: string | null;
}

/** `TaskPage`: one page of `GET tasks`, newest first. */
export interface ITaskPage {
  tasks: ITask[];
  next_cursor: string | null;
}

/** `Log`: text from `offset`; ask again from `next_offset`. */
export interface ILog {
  text: string;
  offset: number;
  next_offset: number;
}

/** `Kind`: a registered kind, the JSON Schema of its `params`, and what it needs. */
export interface IKind {
  name: string;
  title: string;
  description: string;
  schema: { [key: string]: any };
  /**
   * Its tasks carry input bytes only a kernel makes (`%%bgtask`, `submit()`); the
   * server refuses them without, except on an executor that runs inside the kernel.
   */
  needs_payload: boolean;
  /** Only a kernel can launch it: the panel's "New task" form leaves it out. */
  needs_kernel: boolean;
}

/** `KindList`: the reply of `GET kinds`. */
export interface IKindList {
  kinds: IKind[];
}

/** `Error`: every error reply; `field` names the culprit on a 400. */
export interface IErrorReply {
  message: string;
  field?: string;
  /** On a 404 of `GET tasks/{id}`: the id is reserved, its task still being sent. */
  reserved?: boolean;
  [key: string]: any;
}

/** `CreateTask`: the body of `POST tasks` as the browser sends it (only `kind` required). */
export interface ICreateTask {
  kind: string;
  params?: { [key: string]: any };
  name?: string | null;
  key?: string | null;
  executor?: string | null;
  scope?: 'server' | 'kernel';
  run_on?: string | number | null;
  timeout?: number | null;
  retries?: number;
  origin?: Partial<Pick<IOrigin, 'kernel_id' | 'path'>>;
}

/** The query of `GET tasks`. */
export interface IListQuery {
  state?: State;
  category?: Category;
  kind?: string;
  key?: string;
  kernel_id?: string;
  /** Only the runs of this schedule. */
  schedule_id?: string;
  limit?: number;
  cursor?: string;
}

/** Events websocket, first message: every live task as of engine change `seq`. */
export interface ISnapshotMessage {
  type: 'snapshot';
  seq: number;
  tasks: ITask[];
  /** Every schedule (servers with schedules; absent from older ones). */
  schedules?: ISchedule[];
}

/** Events websocket: one change of one task, with its full record. */
export interface ITaskMessage {
  type: 'task';
  seq: number;
  change: 'created' | 'state' | 'progress' | 'note' | 'deleted';
  task: ITask;
}

/** Events websocket: text of a log the client follows (`follow_log`), `offset` to `next_offset`. */
export interface ILogMessage {
  type: 'log';
  id: string;
  offset: number;
  next_offset: number;
  text: string;
  /** The task has ended and all its log was sent: the follow is over. */
  end: boolean;
}

/** Events websocket: a client message the server could not take (`id`: about that task). */
export interface IErrorMessage {
  type: 'error';
  field: string;
  message: string;
  id?: string;
}

/** Events websocket: one change of one schedule, with its full record. */
export interface IScheduleMessage {
  type: 'schedule';
  /** Present when the server numbers schedule changes like task changes. */
  seq?: number;
  change: 'created' | 'updated' | 'deleted';
  schedule: ISchedule;
}

/**
 * A message of the task list; a frame holds one, or a JSON array of messages in order.
 * Frames also carry `ILogMessage`/`IErrorMessage` for logs a client follows (logs.ts).
 */
export type EventMessage = ISnapshotMessage | ITaskMessage | IScheduleMessage;

// -- schedules ------------------------------------------------------------------------

/** How a schedule treats a fire time while its previous run is still live. */
export type Overlap = 'skip' | 'queue' | 'allow';

/** What fire times missed while no server ran become: one run, or none. */
export type Misfire = 'coalesce' | 'skip';

/** `Schedule.last_run`: the latest run it made. */
export interface ILastRun {
  id: string;
  state: State;
  started_at: string | null;
}

/**
 * `Schedule`: a recurring task. Exactly one of `every` (seconds) and `cron` (five fields,
 * read in `timezone`, UTC when null). Times are ISO 8601 UTC strings.
 */
export interface ISchedule {
  id: string;
  name: string;
  kind: string;
  params: { [key: string]: any };
  every: number | null;
  cron: string | null;
  timezone: string | null;
  start_at: string | null;
  end_at: string | null;
  enabled: boolean;
  overlap: Overlap;
  misfire: Misfire;
  executor: string | null;
  timeout: number | null;
  retries: number;
  owner: string;
  created_at: string;
  /** When the scheduler next looks at it; null: not computed yet, or never again. */
  next_fire_at: string | null;
  /** The next (up to) 5 fire times. */
  next_runs: string[];
  last_run: ILastRun | null;
}

/** `ScheduleList`: the reply of `GET schedules`. */
export interface IScheduleList {
  schedules: ISchedule[];
}

/** The body of `POST schedules` (and of its `check_only` preview). */
export interface ICreateSchedule {
  kind: string;
  params?: { [key: string]: any };
  name?: string | null;
  executor?: string | null;
  timeout?: number | null;
  retries?: number;
  every?: number | null;
  cron?: string | null;
  timezone?: string | null;
  start_at?: string | null;
  end_at?: string | null;
  enabled?: boolean;
  overlap?: Overlap;
  misfire?: Misfire;
}

/** What `PATCH schedules/{id}` may change. */
export type IScheduleChanges = Partial<
  Pick<
    ICreateSchedule,
    | 'name'
    | 'params'
    | 'executor'
    | 'timeout'
    | 'retries'
    | 'every'
    | 'cron'
    | 'timezone'
    | 'start_at'
    | 'end_at'
    | 'enabled'
    | 'overlap'
    | 'misfire'
  >
>;

/** The reply of `POST schedules?check_only=true`: the next fire times (ISO). */
export interface ISchedulePreview {
  next_runs: string[];
}
