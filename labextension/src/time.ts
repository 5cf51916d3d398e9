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

/**
 * When a task due at `runOn` starts, from `now` (both in ms): `starts in 45 s`,
 * `starts in 3 min`, or the local time, `starts 14:05` (`starts 2026-12-01 09:00` on
 * another day). Mirrors `starts` of the kernel widget.
 */
export function startsLabel(runOn: number, now: number): string {
  const ahead = (runOn - now) / 1000;
  if (Math.round(ahead) < 60) {
    return `starts in ${Math.max(1, Math.round(ahead))} s`;
  }
  if (Math.round(ahead / 60) < 60) {
    return `starts in ${Math.round(ahead / 60)} min`;
  }
  const at = new Date(runOn);
  const two = (n: number) => String(n).padStart(2, '0');
  const clock = `${two(at.getHours())}:${two(at.getMinutes())}`;
  if (at.toDateString() === new Date(now).toDateString()) {
    return `starts ${clock}`;
  }
  return `starts ${at.getFullYear()}-${two(at.getMonth() + 1)}-${two(at.getDate())} ${clock}`;
}

/**
 * `ran 4 s`, `running 12 s`, `starts in 3 min` (a `run_on` still ahead), `queued 3 s`
 * (since it was made, or since its `run_on` passed), from the task's times and `now`, in ms.
 */
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
  const runOn = at(task.run_on);
  if (!isNaN(runOn) && runOn > now) {
    return startsLabel(runOn, now);
  }
  const since = isNaN(runOn)
    ? at(task.created_at)
    : Math.max(runOn, at(task.created_at));
  return `queued ${formatDuration((now - since) / 1000)}`;
}
