/**
 * The page's schedules: a {@link ScheduleStore} fed by the task model's events
 * connection (snapshot `schedules`, `schedule` messages) and by REST reads at start and
 * while the socket is down; the Schedules tab and its form act through it. A server
 * without the `schedules` routes (404) makes it `available: false`, not an error.
 */
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { errorText } from './errors';
import type { ISchedulesApi, ITasksApi } from './request';
import { ScheduleStore } from './schedulestore';
import type { IBgSchedules } from './tokens';
import type {
  EventMessage,
  ICreateSchedule,
  ISchedule,
  IScheduleChanges,
  ISchedulePreview,
  ITask
} from './types';

export namespace SchedulesModel {
  export interface IOptions {
    /** The `schedules` routes; null: this page has none (schedules unavailable). */
    api: ISchedulesApi | null;
    /** For a schedule's runs (`GET tasks?schedule_id=`). */
    tasks: Pick<ITasksApi, 'list'>;
  }
}

/** Runs listed per schedule (newest first). */
export const RUNS_LIMIT = 50;

export class SchedulesModel implements IBgSchedules, IDisposable {
  constructor(options: SchedulesModel.IOptions) {
    this._api = options.api;
    this._tasks = options.tasks;
    this._available = options.api !== null;
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get available(): boolean {
    return this._available;
  }

  get loading(): boolean {
    return this._loading;
  }

  get error(): string | null {
    return this._error;
  }

  get known(): boolean {
    return this._store.known;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  list(): ISchedule[] {
    return this._store.list();
  }

  get(id: string): ISchedule | undefined {
    return this._store.get(id);
  }

  /** Merge what the events websocket delivered (the task model hands every frame on). */
  handle(messages: EventMessage[]): void {
    if (this._store.applyMessages(messages)) {
      this._error = null;
      this._available = this._api !== null;
      this._changed.emit();
    }
  }

  /** Read every schedule over REST (at start, and while the socket is down). */
  async refresh(): Promise<void> {
    const api = this._api;
    if (!api || this._disposed) {
      return;
    }
    const token = this._store.readToken();
    this._loading = true;
    this._changed.emit();
    try {
      const reply = await api.listSchedules();
      this._store.replaceAll(reply.schedules ?? [], token);
      this._available = true;
      this._error = null;
    } catch (error) {
      if ((error as { status?: number }).status === 404) {
        this._available = false; // a server without schedules
        this._error = null;
      } else {
        this._error = errorText(error);
      }
    } finally {
      this._loading = false;
      if (!this._disposed) {
        this._changed.emit();
      }
    }
  }

  async create(body: ICreateSchedule): Promise<ISchedule> {
    const schedule = await this.api().createSchedule(body);
    this.merge(schedule);
    return this._store.get(schedule.id) ?? schedule;
  }

  check(body: ICreateSchedule): Promise<ISchedulePreview> {
    return this.api().checkSchedule(body);
  }

  async update(id: string, changes: IScheduleChanges): Promise<ISchedule> {
    const schedule = await this.api().patchSchedule(id, changes);
    this.merge(schedule);
    return this._store.get(id) ?? schedule;
  }

  async remove(id: string): Promise<void> {
    try {
      await this.api().removeSchedule(id);
    } catch (error) {
      if ((error as { status?: number }).status !== 404) {
        throw error;
      }
    }
    if (this._store.remove(id)) {
      this._changed.emit();
    }
  }

  async runs(id: string, limit: number = RUNS_LIMIT): Promise<ITask[]> {
    const page = await this._tasks.list({ schedule_id: id, limit });
    return page.tasks;
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    Signal.clearData(this);
  }

  private merge(schedule: ISchedule): void {
    if (this._store.upsert(schedule)) {
      this._changed.emit();
    }
  }

  private api(): ISchedulesApi {
    if (!this._api) {
      throw new Error('This server has no schedules.');
    }
    return this._api;
  }

  private _api: ISchedulesApi | null;
  private _tasks: Pick<ITasksApi, 'list'>;
  private _store = new ScheduleStore();
  private _available: boolean;
  private _loading = false;
  private _error: string | null = null;
  private _disposed = false;
  private _changed = new Signal<this, void>(this);
}
