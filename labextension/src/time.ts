/** How long a task has run (or waited), as the rows show it. */
import type { ITask } from './types';

/** `3 s`, `2 min 5 s`, `1 h 4 min`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) {
    return `${s} s`;
  }
  if (s < 3600) {
    return `${Math.floor(s / 60)} min ${s % 60} s`;
  }
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** `ran 4 s`, `running 12 s`, `queued 3 s` (from the task's times and `now`, in ms). */
export function elapsed(task: ITask, now: number = Date.now()): string {
  const at = (iso: string | null) => (iso ? Date.parse(iso) : NaN);
  const started = at(task.started_at);
  const finished = at(task.finished_at);
  if (!isNaN(started)) {
    const end = isNaN(finished) ? now : finished;
    return `${isNaN(finished) ? 'running' : 'ran'} ${formatDuration((end - started) / 1000)}`;
  }
  if (!isNaN(finished)) {
    return 'never started';
  }
  return `queued ${formatDuration((now - at(task.created_at)) / 1000)}`;
}
