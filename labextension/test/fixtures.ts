/** Test doubles of the model's seams: a fake server API, websocket and clock. */
import type { IClock } from '../src/connection';
import type { ITasksApi } from '../src/request';
import type {
  Category,
  ICreateTask,
  IKind,
  ILog,
  IKindList,
  IListQuery,
  ITask,
  ITaskPage,
  State
} from '../src/types';

const CATEGORY: Record<State, Category> = {
  pending: 'pending',
  running: 'pending',
  cancelling: 'pending',
  finished: 'finished',
  failed: 'failed',
  cancelled: 'failed'
};

let counter = 0;

/** A task as the server would send it. */
export function makeTask(overrides: Partial<ITask> = {}): ITask {
  counter++;
  const state = overrides.state ?? 'running';
  return {
    id: `t${String(counter).padStart(4, '0')}`,
    name: `task ${counter}`,
    kind: 'count',
    params: { times: 3 },
    state,
    category: CATEGORY[state],
    progress: { current: 0, total: 3, fraction: 0, message: '' },
    created_at: new Date(Date.UTC(2026, 0, 1, 0, 0, counter)).toISOString(),
    started_at: null,
    finished_at: null,
    run_on: null,
    owner: 'alice',
    origin: { kernel_id: null, path: null, retry_of: null },
    key: null,
    scope: 'server',
    executor: 'process',
    schedule_id: null,
    attempt: 1,
    retries: 0,
    timeout: null,
    error: null,
    result_preview: null,
    note: null,
    ...overrides,
    ...(overrides.state && !overrides.category
      ? { category: CATEGORY[state] }
      : {})
  };
}

/** A kind as `GET kinds` lists it: by default one a browser can start. */
export function makeKind(overrides: Partial<IKind> = {}): IKind {
  const name = overrides.name ?? 'count';
  return {
    name,
    title: name,
    description: '',
    schema: { type: 'object', properties: {} },
    needs_payload: false,
    needs_kernel: false,
    ...overrides
  };
}

/** `task` moved to `state` (its category follows). */
export function withState(task: ITask, state: State, current?: number): ITask {
  return {
    ...task,
    state,
    category: CATEGORY[state],
    progress: { ...task.progress, current: current ?? task.progress.current }
  };
}

/** A websocket the test opens, feeds and closes by hand. */
export class FakeSocket {
  constructor(readonly url: string) {}
  onopen: ((ev: any) => void) | null = null;
  onmessage: ((ev: any) => void) | null = null;
  onclose: ((ev: any) => void) | null = null;
  onerror: ((ev: any) => void) | null = null;
  closed = false;

  open(): void {
    this.onopen?.({});
  }
  send(message: unknown): void {
    this.onmessage?.({ data: JSON.stringify(message) });
  }
  /** The server (or the network) closes it. */
  drop(code = 1006): void {
    this.closed = true;
    this.onclose?.({ code });
  }
  close(): void {
    this.closed = true;
  }
}

/** An in-memory server: pages per category, the created tasks, every socket opened. */
export class FakeApi implements ITasksApi {
  pages: Partial<Record<Category, ITask[]>> = {};
  byId = new Map<string, ITask>();
  sockets: FakeSocket[] = [];
  lists: IListQuery[] = [];
  failLists = false;
  created: ICreateTask[] = [];
  retried: string[] = [];
  nextCreated: ITask | null = null;

  async list(query: IListQuery): Promise<ITaskPage> {
    this.lists.push(query);
    if (this.failLists) {
      throw Object.assign(new Error('unreachable'), { status: 0 });
    }
    const all = this.pages[query.category!] ?? [];
    const start = query.cursor ? Number(query.cursor) : 0;
    const limit = query.limit ?? 100;
    const tasks = all.slice(start, start + limit);
    const next = start + limit < all.length ? String(start + limit) : null;
    return { tasks, next_cursor: next };
  }
  async get(id: string): Promise<ITask> {
    const task = this.byId.get(id);
    if (!task) {
      throw Object.assign(new Error('not found'), { status: 404 });
    }
    return task;
  }
  async create(body: ICreateTask): Promise<ITask> {
    this.created.push(body);
    const task =
      this.nextCreated ?? makeTask({ kind: body.kind, state: 'pending' });
    this.byId.set(task.id, task);
    return task;
  }
  async cancel(id: string): Promise<ITask> {
    return withState(await this.get(id), 'cancelling');
  }
  async retry(id: string): Promise<ITask> {
    const old = await this.get(id);
    this.retried.push(id);
    const task = makeTask({ kind: old.kind, name: old.name, state: 'pending' });
    this.byId.set(task.id, task);
    return task;
  }
  async remove(id: string): Promise<ITask | null> {
    this.byId.delete(id);
    return null;
  }
  async log(): Promise<ILog> {
    return { text: '', offset: 0, next_offset: 0 };
  }
  async kinds(): Promise<IKindList> {
    return { kinds: [] };
  }
  eventsUrl(): string {
    return 'ws://server/bgtasks/api/events';
  }
  openSocket(url: string): WebSocket {
    const socket = new FakeSocket(url);
    this.sockets.push(socket);
    return socket as unknown as WebSocket;
  }
  get socket(): FakeSocket {
    return this.sockets[this.sockets.length - 1];
  }
}

/** Timers the test fires by hand. */
export class FakeClock implements IClock {
  timers: { fn: () => void; ms: number; handle: number }[] = [];
  private next = 1;
  setTimeout(fn: () => void, ms: number): unknown {
    const handle = this.next++;
    this.timers.push({ fn, ms, handle });
    return handle;
  }
  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter(t => t.handle !== handle);
  }
  /** Run the oldest pending timer; return its delay. */
  fire(): number {
    const timer = this.timers.shift();
    if (!timer) {
      throw new Error('no timer pending');
    }
    timer.fn();
    return timer.ms;
  }
}

/** Let promise callbacks run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) {
    await new Promise(resolve => setImmediate(resolve));
  }
}

/**
 * Drop the live socket, then let `n` reconnects fail at once: the delays the
 * connection waited before each of them.
 */
export function failReconnects(
  api: FakeApi,
  clock: FakeClock,
  n: number
): number[] {
  api.socket.drop();
  const delays: number[] = [];
  for (let i = 0; i < n; i++) {
    delays.push(clock.fire()); // reconnect: a new socket
    api.socket.drop();
  }
  return delays;
}
