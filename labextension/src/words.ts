/**
 * Schedules in words, as the Schedules tab shows them: the trigger (`every 5 min`,
 * `0 9 * * 1-5 (Europe/Berlin)`), when it next fires (`in 12 s`, ticking), and the fire
 * times of the form's preview. Pure: `now` is given, time zones go through `Intl`.
 */
import type { ISchedule } from './types';

const UNITS: [number, string][] = [
  [86400, 'd'],
  [3600, 'h'],
  [60, 'min'],
  [1, 's']
];

/** A number as people write it: `0.5`, `1.25`, `30` (at most 3 decimals). */
function plain(n: number): string {
  return String(Math.round(n * 1000) / 1000);
}

/**
 * A span of seconds in its largest whole units: `30 s`, `5 min`, `1 h 30 min`, `2 d`,
 * `0.5 s`, `1 min 30.5 s`.
 */
export function spanWords(seconds: number): string {
  if (!(seconds > 0) || !isFinite(seconds)) {
    return `${plain(Math.max(0, seconds || 0))} s`;
  }
  const parts: string[] = [];
  let rest = seconds;
  for (const [size, unit] of UNITS) {
    if (size === 1) {
      if (rest > 1e-9) {
        parts.push(`${plain(rest)} s`);
      }
    } else if (rest >= size) {
      const n = Math.floor(rest / size + 1e-9);
      parts.push(`${n} ${unit}`);
      rest -= n * size;
    }
  }
  return parts.join(' ');
}

/** `every 30 s`, `every 5 min`, or the cron as written with its zone (UTC when unset). */
export function triggerWords(
  schedule: Pick<ISchedule, 'every' | 'cron' | 'timezone'>
): string {
  if (schedule.cron) {
    return `${schedule.cron} (${schedule.timezone || 'UTC'})`;
  }
  if (typeof schedule.every === 'number') {
    return `every ${spanWords(schedule.every)}`;
  }
  return 'no trigger';
}

/** `in 5 s`, `in 4 min 10 s`, `in 2 h 5 min`, `in 3 d 4 h`; `now` when due or past. */
export function untilWords(at: number, now: number): string {
  const ahead = Math.ceil((at - now) / 1000);
  if (ahead <= 0) {
    return 'now';
  }
  if (ahead < 60) {
    return `in ${ahead} s`;
  }
  const big = UNITS.findIndex(([size]) => ahead >= size);
  const [size, unit] = UNITS[big];
  const [small, smallUnit] = UNITS[big + 1];
  const first = Math.floor(ahead / size);
  const second = Math.floor((ahead % size) / small);
  return `in ${first} ${unit}${second ? ` ${second} ${smallUnit}` : ''}`;
}

/**
 * When the schedule fires next (ms), from `now`: the first of its `next_runs` still
 * ahead, so the countdown keeps going between the server's updates; else its
 * `next_fire_at` (a fire due now); null when it is disabled or will not fire again.
 */
export function nextFire(
  schedule: Pick<ISchedule, 'enabled' | 'next_runs' | 'next_fire_at'>,
  now: number
): number | null {
  if (!schedule.enabled) {
    return null;
  }
  for (const iso of schedule.next_runs ?? []) {
    const at = Date.parse(iso);
    if (at > now) {
      return at;
    }
  }
  const at = schedule.next_fire_at ? Date.parse(schedule.next_fire_at) : NaN;
  return isNaN(at) ? null : at;
}

/** The row's "next" cell: `in 12 s`, `disabled`, or `no more runs`. */
export function nextFireWords(
  schedule: Pick<ISchedule, 'enabled' | 'next_runs' | 'next_fire_at'>,
  now: number
): string {
  if (!schedule.enabled) {
    return 'disabled';
  }
  const at = nextFire(schedule, now);
  return at === null ? 'no more runs' : untilWords(at, now);
}

/**
 * A fire time for the preview: `Mon 2026-05-04 09:00:00` in `timeZone` (the browser's
 * when unset or unknown to this browser).
 */
export function fireTimeWords(iso: string, timeZone?: string | null): string {
  const date = new Date(iso);
  if (isNaN(date.getTime())) {
    return iso;
  }
  let format: Intl.DateTimeFormat;
  try {
    format = new Intl.DateTimeFormat('en-GB', {
      timeZone: timeZone || undefined,
      weekday: 'short',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hourCycle: 'h23'
    });
  } catch {
    return fireTimeWords(iso, null);
  }
  const parts: { [type: string]: string } = {};
  for (const part of format.formatToParts(date)) {
    parts[part.type] = part.value;
  }
  const seconds = date.getMilliseconds()
    ? `${parts.second}.${String(date.getMilliseconds()).padStart(3, '0')}`
    : parts.second;
  return (
    `${parts.weekday} ${parts.year}-${parts.month}-${parts.day} ` +
    `${parts.hour}:${parts.minute}:${seconds}`
  );
}
