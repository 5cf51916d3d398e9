/**
 * The schedules the browser knows, merged from the events websocket and REST reads.
 *
 * Pure (no DOM, no network), like store.ts for tasks: the schedules model feeds it and
 * signals what it reports. Rules: a snapshot that carries `schedules` lists every schedule
 * and replaces the list; `schedule` messages after it apply in order (`deleted` removes);
 * a numbered message (`seq`) older than the snapshot or than its schedule's last one is
 * dropped. A REST listing replaces the list too, unless a websocket message arrived while
 * it was on its way (the listing may predate it): then the websocket's word stands.
 */
import type { EventMessage, ISchedule } from './types';

/** By name, then by creation (the order people look for them in). */
function byName(a: ISchedule, b: ISchedule): number {
  const names = a.name.localeCompare(b.name);
  if (names !== 0) {
    return names;
  }
  if (a.created_at !== b.created_at) {
    return a.created_at < b.created_at ? -1 : 1;
  }
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

export class ScheduleStore {
  private _items = new Map<string, ISchedule>();
  private _seqs = new Map<string, number>();
  private _deleted = new Set<string>();
  private _snapshotSeq = -1;
  private _heard = 0;
  private _known = false;
  private _sorted: ISchedule[] | null = null;

  /** A full list has arrived (snapshot or REST): an empty list means "none". */
  get known(): boolean {
    return this._known;
  }

  get size(): number {
    return this._items.size;
  }

  get(id: string): ISchedule | undefined {
    return this._items.get(id);
  }

  /** Every schedule, by name (cached until the next change). */
  list(): ISchedule[] {
    if (!this._sorted) {
      this._sorted = [...this._items.values()].sort(byName);
    }
    return this._sorted;
  }

  /** Merge the messages of one websocket frame; true when the list changed. */
  applyMessages(messages: EventMessage[]): boolean {
    let changed = false;
    for (const message of messages) {
      if (message.type === 'snapshot' && Array.isArray(message.schedules)) {
        this._heard++;
        this._snapshotSeq = message.seq;
        this._seqs.clear();
        this.replace(message.schedules);
        changed = true;
      } else if (message.type === 'schedule' && message.schedule) {
        this._heard++;
        changed = this.applyOne(message) || changed;
      }
    }
    return changed;
  }

  /**
   * The token a REST read starts with: `replaceAll` with it is ignored when a websocket
   * message was merged since (the reply may be older than that message).
   */
  readToken(): number {
    return this._heard;
  }

  /** Every schedule, read over REST (`GET schedules`); false when ignored as stale. */
  replaceAll(schedules: ISchedule[], token?: number): boolean {
    if (token !== undefined && token !== this._heard) {
      return false;
    }
    this.replace(schedules);
    return true;
  }

  /** One schedule as a REST reply has it (after POST or PATCH). */
  upsert(schedule: ISchedule): boolean {
    if (this._deleted.has(schedule.id)) {
      return false; // deleted meanwhile: the reply must not bring it back
    }
    this.put(schedule);
    return true;
  }

  remove(id: string): boolean {
    this._deleted.add(id);
    this._seqs.delete(id);
    const had = this._items.delete(id);
    if (had) {
      this._sorted = null;
    }
    return had;
  }

  private applyOne(message: {
    seq?: number;
    change: string;
    schedule: ISchedule;
  }): boolean {
    const { seq, change, schedule } = message;
    if (typeof seq === 'number') {
      if (
        seq <= this._snapshotSeq ||
        seq <= (this._seqs.get(schedule.id) ?? -1)
      ) {
        return false;
      }
      this._seqs.set(schedule.id, seq);
    }
    if (change === 'deleted') {
      return this.remove(schedule.id);
    }
    this._deleted.delete(schedule.id);
    this.put(schedule);
    return true;
  }

  private replace(schedules: ISchedule[]): void {
    this._items.clear();
    for (const schedule of schedules) {
      this._items.set(schedule.id, schedule);
      this._deleted.delete(schedule.id);
    }
    this._sorted = null;
    this._known = true;
  }

  private put(schedule: ISchedule): void {
    this._items.set(schedule.id, schedule);
    this._sorted = null;
  }
}
