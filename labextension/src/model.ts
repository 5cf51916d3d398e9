/**
 * The one owner of the connection to the task engine: it keeps the events websocket
 * open (reconnecting with backoff), polls REST with `@lumino/polling` while the socket
 * is down, loads the history tabs page by page, and tells views what changed through
 * Signals. Views never fetch the task list themselves.
 */
import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { backoffDelay, DEFAULT_BACKOFF, IBackoff } from './backoff';
import type { ITasksApi } from './request';
import { IMergeResult, TaskStore } from './store';
import { Category, ICreateTask, ITask } from './types';

/** How the model hears about changes. */
export type ConnectionStatus = 'connecting' | 'live' | 'polling' | 'disposed';

/** The history tabs, read from REST page by page (the live tab comes from events). */
const HISTORY: Category[] = ['failed', 'finished'];

/** Where the ids of the tasks this browser launched are remembered. */
const MINE_KEY = 'jupyter-bgtasks:launched';
const MINE_MAX = 500;

/** A small seam over timers, so tests drive time. */
export interface IClock {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export namespace TasksModel {
  export interface IOptions {
    api: ITasksApi;
    /** Tasks per REST page. */
    pageSize?: number;
    /** Polling interval while the websocket is down (ms). */
    pollInterval?: number;
    backoff?: IBackoff;
    random?: () => number;
    clock?: IClock;
    /** Where to remember the tasks launched here (null: only in memory). */
    storage?: Pick<Storage, 'getItem' | 'setItem'> | null;
    /** `@lumino/polling` standby; 'when-hidden' in the browser. */
    standby?: Poll.Standby;
  }

  /** Load state of one tab. */
  export interface ITabState {
    loading: boolean;
    error: string | null;
    /** A further REST page exists (history tabs). */
    hasMore: boolean;
  }
}

const defaultClock: IClock = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: handle => clearTimeout(handle as any)
};

export class TasksModel implements IDisposable {
  constructor(options: TasksModel.IOptions) {
    this.api = options.api;
    this._pageSize = options.pageSize ?? 100;
    this._backoff = options.backoff ?? DEFAULT_BACKOFF;
    this._random = options.random ?? Math.random;
    this._clock = options.clock ?? defaultClock;
    this._storage = options.storage ?? null;
    this._mine = new Set(this.readMine());
    this._poll = new Poll({
      auto: false,
      factory: () => this.pollOnce(),
      frequency: {
        interval: options.pollInterval ?? 2000,
        backoff: true,
        max: this._backoff.max
      },
      name: 'jupyter-bgtasks:poll',
      standby: options.standby ?? 'never'
    });
    for (const category of ['pending', ...HISTORY] as Category[]) {
      this._tabs.set(category, { loading: false, error: null, hasMore: false });
    }
  }

  readonly api: ITasksApi;

  /** Something in the task list, a tab's state or the connection changed. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** The connection status changed. */
  get statusChanged(): ISignal<this, ConnectionStatus> {
    return this._statusChanged;
  }

  /** A task launched from this browser finished, failed or was cancelled. */
  get taskEnded(): ISignal<this, ITask> {
    return this._taskEnded;
  }

  get status(): ConnectionStatus {
    return this._status;
  }

  get isDisposed(): boolean {
    return this._status === 'disposed';
  }

  /** Tasks actually running (or being cancelled): the indicator's count. */
  get runningCount(): number {
    return this._store.count(t => t.state === 'running' || t.state === 'cancelling');
  }

  tasks(category: Category): ITask[] {
    return this._store.byCategory(category);
  }

  task(id: string): ITask | undefined {
    return this._store.get(id);
  }

  tab(category: Category): TasksModel.ITabState {
    return this._tabs.get(category)!;
  }

  /** Whether this browser launched the task (its end is notified). */
  isMine(id: string): boolean {
    return this._mine.has(id);
  }

  /** Open the events websocket and load the first page of each history tab. */
  start(): void {
    if (this._started || this.isDisposed) {
      return;
    }
    this._started = true;
    this.connect();
    for (const category of HISTORY) {
      void this.loadPage(category, true);
    }
  }

  /** Load the next REST page of a history tab. */
  async loadMore(category: Category): Promise<void> {
    await this.loadPage(category, false);
  }

  /** Create a task and remember it as launched from here. */
  async create(body: ICreateTask): Promise<ITask> {
    const task = await this.api.create(body);
    this.markMine(task.id);
    this.merge(this._store.upsert([task]));
    // Its end may have come over the websocket before this reply did.
    const known = this._store.get(task.id);
    if (known && known.category !== 'pending') {
      this._taskEnded.emit(known);
    }
    return known ?? task;
  }

  /** Run a task again: the same kind, parameters and name. */
  retry(task: ITask): Promise<ITask> {
    return this.create({
      kind: task.kind,
      params: task.params,
      name: task.name,
      executor: task.executor === 'kernel' ? null : task.executor,
      scope: task.scope === 'kernel' && task.origin.kernel_id ? 'kernel' : 'server',
      timeout: task.timeout,
      retries: task.executor === 'kernel' ? 0 : task.retries,
      origin: { ...task.origin }
    });
  }

  async cancel(id: string): Promise<void> {
    this.merge(this._store.upsert([await this.api.cancel(id)]));
  }

  /** Cancel a live task, or remove a terminal one from the history. */
  async remove(id: string): Promise<void> {
    const task = await this.api.remove(id);
    if (task) {
      this.merge(this._store.upsert([task]));
    } else if (this._store.remove(id)) {
      this._changed.emit();
    }
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.setStatus('disposed');
    this._clock.clearTimeout(this._timer);
    this._poll.dispose();
    if (this._socket) {
      this._socket.onclose = null;
      this._socket.close();
      this._socket = null;
    }
    Signal.clearData(this);
  }

  // -- the websocket -----------------------------------------------------------------

  private connect(): void {
    if (this.isDisposed) {
      return;
    }
    if (this._status !== 'polling') {
      this.setStatus('connecting');
    }
    let socket: WebSocket;
    try {
      socket = this.api.openSocket(this.api.eventsUrl());
    } catch {
      this.onSocketClosed();
      return;
    }
    this._socket = socket;
    socket.onopen = () => {
      this._attempt = 0;
    };
    socket.onmessage = (event: MessageEvent) => {
      let result: IMergeResult;
      try {
        result = this._store.applyFrame(String(event.data));
      } catch (error) {
        console.warn('jupyter-bgtasks: unreadable event frame', error);
        return;
      }
      if (this._status !== 'live') {
        // The snapshot arrived: the socket is the source of truth again.
        this.setStatus('live');
        void this._poll.stop();
        this.tab('pending').error = null;
        for (const category of HISTORY) {
          if (!this.tab(category).loading) {
            void this.loadPage(category, true);
          }
        }
      }
      this.merge(result);
    };
    socket.onclose = () => this.onSocketClosed();
    socket.onerror = () => {
      /* onclose follows */
    };
  }

  private onSocketClosed(): void {
    this._socket = null;
    if (this.isDisposed) {
      return;
    }
    this._attempt++;
    // Meanwhile, REST keeps the list current.
    if (this._status !== 'polling') {
      this.setStatus('polling');
      void this._poll.start();
    }
    const delay = backoffDelay(this._attempt, this._backoff, this._random);
    this._timer = this._clock.setTimeout(() => this.connect(), delay);
  }

  /** Reconnect attempts since the socket last opened (for tests and diagnostics). */
  get attempt(): number {
    return this._attempt;
  }

  // -- REST --------------------------------------------------------------------------

  private async pollOnce(): Promise<void> {
    if (this._status !== 'polling') {
      return;
    }
    const tab = this.tab('pending');
    try {
      const page = await this.api.list({ category: 'pending', limit: 1000 });
      tab.error = null;
      this.merge(this._store.replaceLive(page.tasks));
    } catch (error) {
      tab.error = errorText(error);
      this._changed.emit();
      throw error; // the Poll backs off
    }
    await Promise.all(HISTORY.map(c => this.loadPage(c, true)));
  }

  private async loadPage(category: Category, first: boolean): Promise<void> {
    const tab = this.tab(category);
    const cursor = first ? null : this._cursors.get(category) ?? null;
    if (!first && !cursor) {
      return;
    }
    tab.loading = true;
    this._changed.emit();
    try {
      const page = await this.api.list({
        category,
        limit: this._pageSize,
        ...(cursor ? { cursor } : {})
      });
      // A refresh of the first page keeps the cursor of pages loaded further on.
      if (!first || !this._cursors.has(category)) {
        this._cursors.set(category, page.next_cursor);
      }
      tab.hasMore = !!this._cursors.get(category);
      tab.error = null;
      this.merge(this._store.upsert(page.tasks));
    } catch (error) {
      tab.error = errorText(error);
    } finally {
      tab.loading = false;
      this._changed.emit();
    }
  }

  /** Signal a merge; ask the server what became of tasks that vanished from the live list. */
  private merge(result: IMergeResult): void {
    for (const task of result.ended) {
      if (this._mine.has(task.id)) {
        this._taskEnded.emit(task);
      }
    }
    if (result.changed) {
      this._changed.emit();
    }
    for (const id of result.stale) {
      void this.api.get(id).then(
        task => this.merge(this._store.upsert([task])),
        error => {
          if ((error as { status?: number }).status === 404 && this._store.remove(id)) {
            this._changed.emit();
          }
        }
      );
    }
  }

  private setStatus(status: ConnectionStatus): void {
    if (this._status !== status) {
      this._status = status;
      this._statusChanged.emit(status);
      this._changed.emit();
    }
  }

  private readMine(): string[] {
    try {
      const raw = this._storage?.getItem(MINE_KEY);
      const ids = raw ? JSON.parse(raw) : [];
      return Array.isArray(ids) ? ids.filter(i => typeof i === 'string') : [];
    } catch {
      return [];
    }
  }

  private markMine(id: string): void {
    this._mine.add(id);
    try {
      this._storage?.setItem(MINE_KEY, JSON.stringify([...this._mine].slice(-MINE_MAX)));
    } catch {
      /* storage full or refused: remembered for this page only */
    }
  }

  private _store = new TaskStore();
  private _tabs = new Map<Category, TasksModel.ITabState>();
  private _cursors = new Map<Category, string | null>();
  private _mine: Set<string>;
  private _status: ConnectionStatus = 'connecting';
  private _started = false;
  private _socket: WebSocket | null = null;
  private _attempt = 0;
  private _timer: unknown = null;
  private _poll: Poll;
  private _pageSize: number;
  private _backoff: IBackoff;
  private _random: () => number;
  private _clock: IClock;
  private _storage: Pick<Storage, 'getItem' | 'setItem'> | null;
  private _changed = new Signal<this, void>(this);
  private _statusChanged = new Signal<this, ConnectionStatus>(this);
  private _taskEnded = new Signal<this, ITask>(this);
}

/** A readable line for an error of any shape. */
export function errorText(error: unknown): string {
  if (error instanceof Error) {
    return error.message;
  }
  return String(error);
}
