/**
 * The tasks the browser knows, merged from the events websocket and REST pages.
 *
 * Pure (no DOM, no network): the model feeds it and turns what it reports into
 * signals. Rules, from docs/rest.md: a snapshot lists every live task as of engine
 * change `seq`; a task message older than the snapshot, or than the last message of its
 * task, is stale and dropped; `deleted` removes the task.
 */
import { Category, EventMessage, ITask, LIVE_STATES } from './types';

/** What one merge changed. */
export interface IMergeResult {
  /** Something visible changed. */
  changed: boolean;
  /** Tasks that went from live to terminal in this merge. */
  ended: ITask[];
  /**
   * Live tasks that a snapshot or a full live listing no longer lists: they ended
   * (or were deleted) while nobody was listening; ask the server how.
   */
  stale: string[];
}

const isLive = (task: ITask): boolean => LIVE_STATES.has(task.state);

/** Newest first, as the server lists them (ids are time-ordered; break ties by id). */
function newestFirst(a: ITask, b: ITask): number {
  if (a.created_at !== b.created_at) {
    return a.created_at < b.created_at ? 1 : -1;
  }
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

/** Parse one websocket frame: one message, or a JSON array of messages in order. */
export function parseFrame(data: string): EventMessage[] {
  const parsed = JSON.parse(data);
  return (Array.isArray(parsed) ? parsed : [parsed]).filter(
    (m: any) => m && typeof m === 'object' && typeof m.type === 'string'
  );
}

export class TaskStore {
  private _tasks = new Map<string, ITask>();
  private _seqs = new Map<string, number>();
  private _snapshotSeq = -1;
  private _sorted = new Map<Category, ITask[]>();

  /** Number of tasks known. */
  get size(): number {
    return this._tasks.size;
  }

  get(id: string): ITask | undefined {
    return this._tasks.get(id);
  }

  /** The tasks of one tab, newest first (cached until the next change). */
  byCategory(category: Category): ITask[] {
    let list = this._sorted.get(category);
    if (!list) {
      list = [...this._tasks.values()]
        .filter(t => t.category === category)
        .sort(newestFirst);
      this._sorted.set(category, list);
    }
    return list;
  }

  /** How many tasks are in a given state. */
  count(predicate: (task: ITask) => boolean): number {
    let n = 0;
    for (const task of this._tasks.values()) {
      if (predicate(task)) {
        n++;
      }
    }
    return n;
  }

  /** Merge the messages of one websocket frame, in order. */
  applyFrame(data: string): IMergeResult {
    return this.applyMessages(parseFrame(data));
  }

  applyMessages(messages: EventMessage[]): IMergeResult {
    const result: IMergeResult = { changed: false, ended: [], stale: [] };
    for (const message of messages) {
      if (message.type === 'snapshot') {
        this.applySnapshot(message.seq, message.tasks, result);
      } else if (message.type === 'task') {
        this.applyTask(message.seq, message.change, message.task, result);
      }
      // Other types (schedules: schedulestore.ts) are not the task list's business.
    }
    return result;
  }

  /**
   * Tasks read over REST: newer knowledge wins. A terminal task never goes back to
   * live (the listing may predate the event that ended it).
   */
  upsert(tasks: ITask[]): IMergeResult {
    const result: IMergeResult = { changed: false, ended: [], stale: [] };
    for (const task of tasks) {
      const old = this._tasks.get(task.id);
      if (old && !isLive(old) && isLive(task)) {
        continue;
      }
      this.put(task, old, result);
    }
    return result;
  }

  /**
   * Every live task, listed in full over REST (polling without the websocket): like a
   * snapshot without a `seq`.
   */
  replaceLive(tasks: ITask[]): IMergeResult {
    const result = this.upsert(tasks);
    this.markStale(new Set(tasks.map(t => t.id)), result);
    return result;
  }

  remove(id: string): boolean {
    const had = this._tasks.delete(id);
    this._seqs.delete(id);
    if (had) {
      this._sorted.clear();
    }
    return had;
  }

  private applySnapshot(
    seq: number,
    tasks: ITask[],
    result: IMergeResult
  ): void {
    this._snapshotSeq = seq;
    this._seqs.clear();
    for (const task of tasks) {
      this.put(task, this._tasks.get(task.id), result);
      this._seqs.set(task.id, seq);
    }
    this.markStale(new Set(tasks.map(t => t.id)), result);
  }

  private applyTask(
    seq: number,
    change: string,
    task: ITask,
    result: IMergeResult
  ): void {
    if (seq <= this._snapshotSeq || seq <= (this._seqs.get(task.id) ?? -1)) {
      return;
    }
    this._seqs.set(task.id, seq);
    if (change === 'deleted') {
      if (this.remove(task.id)) {
        result.changed = true;
      }
      return;
    }
    this.put(task, this._tasks.get(task.id), result);
  }

  private put(task: ITask, old: ITask | undefined, result: IMergeResult): void {
    this._tasks.set(task.id, task);
    this._sorted.clear();
    result.changed = true;
    if (old && isLive(old) && !isLive(task)) {
      result.ended.push(task);
    }
  }

  private markStale(listed: Set<string>, result: IMergeResult): void {
    for (const [id, task] of this._tasks) {
      if (isLive(task) && !listed.has(id)) {
        result.stale.push(id);
      }
    }
  }
}
