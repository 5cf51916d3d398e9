/**
 * The task model: the one owner of the task list of the page. It merges what the events
 * connection (connection.ts) delivers into the store, refreshes over REST while the
 * socket is down, loads the history tabs page by page, remembers the tasks launched from
 * this browser, and tells views what changed through Signals. Views never fetch the
 * task list themselves; they see this class only through `IBgTasksModel` (tokens.ts).
 */
import { DisposableDelegate, IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { ConnectionStatus, EventsConnection } from './connection';
import { errorText } from './errors';
import { LogFollows, LogListener } from './logs';
import type { ISchedulesApi, ITasksApi } from './request';
import { SchedulesModel } from './schedulesmodel';
import { IMergeResult, TaskStore } from './store';
import type { IBgTasksModel, TaskListener } from './tokens';
import { Category, EventMessage, ICreateTask, ITask } from './types';

/** The history tabs, read from REST page by page (the live tab comes from events). */
const HISTORY: Category[] = ['failed', 'finished'];

/** Where the ids of the tasks this browser launched are remembered. */
const MINE_KEY = 'jupyter-bgtasks:launched';
const MINE_MAX = 500;

export namespace TasksModel {
  /** The connection's options (timers, backoff, polling), and the model's own. */
  export interface IOptions extends Omit<
    EventsConnection.IOptions,
    'api' | 'poll'
  > {
    api: ITasksApi;
    /** The `schedules` routes (usually the same client as `api`); none: no schedules. */
    schedulesApi?: ISchedulesApi | null;
    /** Tasks per REST page. */
    pageSize?: number;
    /** Where to remember the tasks launched here (null: only in memory). */
    storage?: Pick<Storage, 'getItem' | 'setItem'> | null;
  }
}

export class TasksModel implements IBgTasksModel, IDisposable {
  constructor(options: TasksModel.IOptions) {
    this.api = options.api;
    this._pageSize = options.pageSize ?? 100;
    this._storage = options.storage ?? null;
    this._mine = new Set(this.readMine());
    this.schedules = new SchedulesModel({
      api: options.schedulesApi ?? null,
      tasks: options.api
    });
    this._connection = new EventsConnection({
      api: options.api,
      poll: () => this.refreshLive(),
      pollInterval: options.pollInterval,
      backoff: options.backoff,
      random: options.random,
      clock: options.clock,
      standby: options.standby
    });
    this._logs = new LogFollows(message => this._connection.send(message));
    this._connection.statusChanged.connect(this.onStatus, this);
    this._connection.received.connect(this.onMessages, this);
    for (const category of ['pending', ...HISTORY] as Category[]) {
      this._tabs.set(category, { loading: false, error: null, hasMore: false });
    }
  }

  readonly api: ITasksApi;

  /** The server's schedules, fed by the same events connection. */
  readonly schedules: SchedulesModel;

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

  /** Any task this page saw live finished, failed or was cancelled. */
  get ended(): ISignal<this, ITask> {
    return this._ended;
  }

  get status(): ConnectionStatus {
    return this._connection.status;
  }

  /** Follow a task's log, pushed over the events websocket (logs.ts). */
  followLog(id: string, offset: number, listener: LogListener): IDisposable {
    return this._logs.follow(id, offset, listener);
  }

  get isDisposed(): boolean {
    return this._connection.isDisposed;
  }

  /** Tasks actually running (or being cancelled): the indicator's count. */
  get runningCount(): number {
    return this._store.count(
      t => t.state === 'running' || t.state === 'cancelling'
    );
  }

  tasks(category: Category): ITask[] {
    return this._store.byCategory(category);
  }

  task(id: string): ITask | undefined {
    return this._store.get(id);
  }

  /**
   * The task `id` as the server has it now, read over REST and kept in the store (the
   * events websocket then keeps it current); null when the server does not know it. A
   * task already in the store is not asked for again; views asking at once share one
   * request. Other refusals (the server unreachable) reject.
   */
  fetch(id: string): Promise<ITask | null> {
    const known = this._store.get(id);
    if (known) {
      return Promise.resolve(known);
    }
    let pending = this._fetching.get(id);
    if (!pending) {
      pending = this.api.get(id).then(
        task => {
          this._fetching.delete(id);
          this.merge(this._store.upsert([task]));
          return this._store.get(id) ?? task;
        },
        error => {
          this._fetching.delete(id);
          const { status, reserved } = error as {
            status?: number;
            reserved?: boolean;
          };
          if (status === 404) {
            // Its creation may have come over the websocket meanwhile. A reserved id
            // (inputs still on their way) is thrown on: the caller waits for it.
            const known = this._store.get(id);
            if (known || !reserved) {
              return known ?? null;
            }
          }
          throw error;
        }
      );
      this._fetching.set(id, pending);
    }
    return pending;
  }

  /**
   * Hear about one task: `listener` gets its new record each time the store's record of
   * `id` changes, and `undefined` when it leaves the store (deleted). Each merge checks
   * only the watched ids, by identity (the store replaces records, never mutates them),
   * so many cell views cost little however busy the other tasks are.
   */
  watch(id: string, listener: TaskListener): IDisposable {
    let watch = this._watches.get(id);
    if (!watch) {
      watch = { last: this._store.get(id), listeners: new Set() };
      this._watches.set(id, watch);
    }
    const entry = { listener };
    watch.listeners.add(entry);
    return new DisposableDelegate(() => {
      const current = this._watches.get(id);
      current?.listeners.delete(entry);
      if (current && current.listeners.size === 0) {
        this._watches.delete(id);
      }
    });
  }

  tab(category: Category): IBgTasksModel.ITabState {
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
    this._connection.open();
    for (const category of HISTORY) {
      void this.loadPage(category, true);
    }
    // Shown before the socket's snapshot arrives (which then replaces it).
    void this.schedules.refresh();
  }

  /** Load the next REST page of a history tab. */
  async loadMore(category: Category): Promise<void> {
    await this.loadPage(category, false);
  }

  /** Create a task and remember it as launched from here. */
  async create(body: ICreateTask): Promise<ITask> {
    return this.adopt(await this.api.create(body));
  }

  /**
   * Run an ended task again: the server makes a new task from the stored spec and input
   * (any kind, a `%%bgtask` cell included: no kernel is needed, nothing is rebuilt here).
   */
  async retry(task: ITask): Promise<ITask> {
    return this.adopt(await this.api.retry(task.id));
  }

  /** A task the server made at this browser's request: mine, shown, its end notified. */
  private adopt(task: ITask): ITask {
    this.markMine(task.id);
    this.merge(this._store.upsert([task]));
    // Its end may have come over the websocket before this reply did.
    const known = this._store.get(task.id);
    if (known && known.category !== 'pending') {
      this._taskEnded.emit(known);
    }
    return known ?? task;
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
      this.changedOne();
    }
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._connection.dispose();
    this.schedules.dispose();
    Signal.clearData(this);
  }

  // -- what the connection delivers --------------------------------------------------

  private onStatus(_: EventsConnection, status: ConnectionStatus): void {
    if (status === 'live') {
      // The socket is the source of truth again: polling's errors are over.
      this.tab('pending').error = null;
    }
    this._statusChanged.emit(status);
    this._changed.emit();
    if (status === 'live') {
      this._logs.resume();
      // History may have grown while nobody was listening.
      for (const category of HISTORY) {
        if (!this.tab(category).loading) {
          void this.loadPage(category, true);
        }
      }
    }
  }

  private onMessages(_: EventsConnection, messages: EventMessage[]): void {
    try {
      this.schedules.handle(messages);
    } catch (error) {
      console.warn('jupyter-bgtasks: unreadable schedule message', error);
    }
    let result: IMergeResult;
    try {
      result = this._store.applyMessages(messages);
    } catch (error) {
      console.warn('jupyter-bgtasks: unreadable event frame', error);
      return;
    }
    this._logs.handle(messages);
    this.merge(result);
  }

  // -- REST --------------------------------------------------------------------------

  /** The connection's polling fallback: every live task, then the first history pages. */
  private async refreshLive(): Promise<void> {
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
    await Promise.all([
      ...HISTORY.map(c => this.loadPage(c, true)),
      this.schedules.refresh()
    ]);
  }

  private async loadPage(category: Category, first: boolean): Promise<void> {
    const tab = this.tab(category);
    const cursor = first ? null : (this._cursors.get(category) ?? null);
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
      this._ended.emit(task);
    }
    if (result.changed) {
      this.changedOne();
    }
    for (const id of result.stale) {
      void this.api.get(id).then(
        task => this.merge(this._store.upsert([task])),
        error => {
          if (
            (error as { status?: number }).status === 404 &&
            this._store.remove(id)
          ) {
            this.changedOne();
          }
        }
      );
    }
  }

  /** The task list changed: tell the watchers whose task did, then everyone. */
  private changedOne(): void {
    for (const [id, watch] of this._watches) {
      const now = this._store.get(id);
      if (now !== watch.last) {
        watch.last = now;
        for (const entry of [...watch.listeners]) {
          try {
            entry.listener(now);
          } catch (error) {
            console.error('jupyter-bgtasks: a task watcher failed', error);
          }
        }
      }
    }
    this._changed.emit();
  }

  // -- tasks launched from this browser ----------------------------------------------

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
      this._storage?.setItem(
        MINE_KEY,
        JSON.stringify([...this._mine].slice(-MINE_MAX))
      );
    } catch {
      /* storage full or refused: remembered for this page only */
    }
  }

  private _store = new TaskStore();
  private _fetching = new Map<string, Promise<ITask | null>>();
  private _watches = new Map<
    string,
    { last: ITask | undefined; listeners: Set<{ listener: TaskListener }> }
  >();
  private _connection: EventsConnection;
  private _logs: LogFollows;
  private _tabs = new Map<Category, IBgTasksModel.ITabState>();
  private _cursors = new Map<Category, string | null>();
  private _mine: Set<string>;
  private _started = false;
  private _pageSize: number;
  private _storage: Pick<Storage, 'getItem' | 'setItem'> | null;
  private _changed = new Signal<this, void>(this);
  private _statusChanged = new Signal<this, ConnectionStatus>(this);
  private _taskEnded = new Signal<this, ITask>(this);
  private _ended = new Signal<this, ITask>(this);
}
