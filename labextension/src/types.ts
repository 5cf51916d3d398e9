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
  limit?: number;
  cursor?: string;
}

/** Events websocket, first message: every live task as of engine change `seq`. */
export interface ISnapshotMessage {
  type: 'snapshot';
  seq: number;
  tasks: ITask[];
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

/**
 * A message of the task list; a frame holds one, or a JSON array of messages in order.
 * Frames also carry `ILogMessage`/`IErrorMessage` for logs a client follows (logs.ts).
 */
export type EventMessage = ISnapshotMessage | ITaskMessage;
