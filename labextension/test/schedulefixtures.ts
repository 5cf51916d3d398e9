/** Schedules as the server sends them, and a fake of the `schedules` routes. */
import type { ISchedulesApi } from '../src/request';
import type {
  ICreateSchedule,
  ISchedule,
  IScheduleChanges,
  IScheduleList,
  ISchedulePreview
} from '../src/types';

let counter = 0;

/** A schedule as `GET schedules` lists it: every 60 s, enabled, no run yet. */
export function makeSchedule(overrides: Partial<ISchedule> = {}): ISchedule {
  counter++;
  return {
    id: `s${String(counter).padStart(4, '0')}`,
    name: `schedule ${counter}`,
    kind: 'count',
    params: { times: 3 },
    every: 60,
    cron: null,
    timezone: null,
    start_at: null,
    end_at: null,
    enabled: true,
    overlap: 'skip',
    misfire: 'coalesce',
    executor: null,
    timeout: null,
    retries: 0,
    owner: 'alice',
    created_at: new Date(Date.UTC(2026, 0, 1, 0, 0, counter)).toISOString(),
    next_fire_at: null,
    next_runs: [],
    last_run: null,
    ...overrides
  };
}

/** An in-memory `schedules` API: what was asked, and the replies to give. */
export class FakeSchedulesApi implements ISchedulesApi {
  schedules: ISchedule[] = [];
  lists = 0;
  /** The next `listSchedules` waits for this (to answer late). */
  gate: Promise<void> | null = null;
  failWith: unknown = null;
  patched: [string, IScheduleChanges][] = [];

  async listSchedules(): Promise<IScheduleList> {
    this.lists++;
    const snapshot = [...this.schedules];
    if (this.gate) {
      await this.gate;
    }
    if (this.failWith) {
      throw this.failWith;
    }
    return { schedules: snapshot };
  }
  async getSchedule(id: string): Promise<ISchedule> {
    const found = this.schedules.find(s => s.id === id);
    if (!found) {
      throw Object.assign(new Error('not found'), { status: 404 });
    }
    return found;
  }
  async createSchedule(body: ICreateSchedule): Promise<ISchedule> {
    const schedule = makeSchedule({ kind: body.kind, every: body.every });
    this.schedules.push(schedule);
    return schedule;
  }
  async checkSchedule(): Promise<ISchedulePreview> {
    return { next_runs: [] };
  }
  async patchSchedule(
    id: string,
    changes: IScheduleChanges
  ): Promise<ISchedule> {
    this.patched.push([id, changes]);
    const schedule = {
      ...(await this.getSchedule(id)),
      ...changes
    } as ISchedule;
    this.schedules = this.schedules.map(s => (s.id === id ? schedule : s));
    return schedule;
  }
  async removeSchedule(id: string): Promise<void> {
    this.schedules = this.schedules.filter(s => s.id !== id);
  }
}
