/**
 * What a task's cell output says, as pure functions of the output bundle, the server's
 * record and the time: cellview.tsx draws it, test/cellstate.test.ts checks it without a
 * DOM. The lines mirror the kernel-side widget (bgtasks_ext/kernel/widgets.py: `timing`,
 * `_message`, units.py `human_bytes`), so a task reads the same in every front end.
 */
import { formatNumber } from './numbers';
import { startsLabel } from './time';
import { IProgress, ITask, LIVE_STATES } from './types';

/** The bundle version this renderer reads. */
export const BUNDLE_VERSION = 1;

/** `application/vnd.bgtasks.task+json`, as the kernel displays it under a cell. */
export interface ITaskBundle {
  version: number;
  task_id: string;
  name: string;
  /**
   * Bytes of inputs the kernel was still sending when it displayed this: until then
   * the task (with this id, reserved beforehand) may not be on the server.
   */
  sending: number;
  /** What the kernel knew at display time (e.g. `superseded task X`). */
  note: string | null;
}

/** The bundle, or why it cannot be read (the view says so instead of guessing). */
export function parseBundle(data: unknown): ITaskBundle | string {
  if (!data || typeof data !== 'object' || Array.isArray(data)) {
    return 'the task output is not a JSON object';
  }
  const raw = data as { [key: string]: unknown };
  if (raw.version !== BUNDLE_VERSION) {
    return `task output version ${JSON.stringify(raw.version)} is not understood by this extension (it reads ${BUNDLE_VERSION})`;
  }
  if (typeof raw.task_id !== 'string' || !raw.task_id) {
    return 'the task output has no task_id';
  }
  const sending =
    typeof raw.sending === 'number' && Number.isFinite(raw.sending)
      ? Math.max(0, raw.sending)
      : 0;
  return {
    version: BUNDLE_VERSION,
    task_id: raw.task_id,
    name: typeof raw.name === 'string' ? raw.name : '',
    sending,
    note: typeof raw.note === 'string' && raw.note ? raw.note : null
  };
}

/** `315 MB`: decimal units, 3 significant digits at most (units.py `human_bytes`). */
export function humanBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB'];
  let value = Math.max(0, n);
  for (const unit of units) {
    if (value < 1000 || unit === 'GB') {
      return unit === 'B' || value >= 10
        ? `${Math.round(value)} ${unit}`
        : `${value.toFixed(1)} ${unit}`;
    }
    value /= 1000;
  }
  return `${value} GB`; // not reached: the loop returns at GB
}

/** `0:12`, `12:05`, `1:02:03` (widgets.py `_duration`). */
export function clock(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const two = (n: number) => String(n).padStart(2, '0');
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h}:${two(m)}:${two(s % 60)}` : `${m}:${two(s % 60)}`;
}

const at = (iso: string | null | undefined): number =>
  iso ? Date.parse(iso) : NaN;

/**
 * `elapsed 0:12 · ETA 0:30` from the record's times and fraction; for a task still to
 * start, when it starts (`starts in 3 min`, a `run_on` ahead) or `waiting`.
 */
export function cellTiming(task: ITask, now: number): string {
  const started = at(task.started_at);
  if (isNaN(started)) {
    if (task.state !== 'pending') {
      return '';
    }
    const runOn = at(task.run_on);
    return !isNaN(runOn) && runOn > now ? startsLabel(runOn, now) : 'waiting';
  }
  const finished = at(task.finished_at);
  const elapsed = Math.max(
    0,
    ((isNaN(finished) ? now : finished) - started) / 1000
  );
  let text = `elapsed ${clock(elapsed)}`;
  const fraction = task.progress?.fraction;
  if (
    task.state === 'running' &&
    typeof fraction === 'number' &&
    fraction > 0 &&
    fraction < 1
  ) {
    text += ` · ETA ${clock((elapsed * (1 - fraction)) / fraction)}`;
  }
  return text;
}

/** `3 / 10 · step 3`: the count (when there is one) and the task's message. */
export function countLine(progress: IProgress | null | undefined): string {
  if (!progress) {
    return '';
  }
  const { current, total, message } = progress;
  let count = '';
  if (typeof current === 'number' && (current || typeof total === 'number')) {
    count =
      formatNumber(current) +
      (typeof total === 'number' ? ` / ${formatNumber(total)}` : '');
  }
  return [count, message || ''].filter(p => p).join(' · ');
}

/**
 * The bar: a fraction in [0, 1], or null for an indeterminate (animated) bar. Full once
 * finished; indeterminate while running (or cancelling) without a known total; empty
 * while waiting; where it stopped for a failed or cancelled task.
 */
export function barValue(task: ITask): number | null {
  if (task.state === 'finished') {
    return 1;
  }
  const fraction = task.progress?.fraction;
  if (typeof fraction === 'number' && Number.isFinite(fraction)) {
    return Math.min(1, Math.max(0, fraction));
  }
  if (task.state === 'running' || task.state === 'cancelling') {
    return null;
  }
  return 0;
}

/** Whether the Cancel button can act: the task is pending or running (not yet cancelling). */
export function canCancel(task: ITask): boolean {
  return LIVE_STATES.has(task.state) && task.state !== 'cancelling';
}

/** The note line: the server's (set after the display, e.g. `outputs set: a`), else the bundle's. */
export function noteOf(task: ITask | undefined, bundle: ITaskBundle): string {
  return task?.note || bundle.note || '';
}

/**
 * What the output shows besides the task itself:
 * - `loading`: the first answer of the server is awaited;
 * - `sending`: the kernel was sending its inputs and the server does not have the task yet;
 * - `unsent`: the kernel was sending its inputs, and the server neither has the task nor
 *   expects it any more (the kernel stopped sending: it died or lost the server);
 * - `missing`: the server does not know the task (deleted, or another server's);
 * - `deleted`: it was removed from the history while shown;
 * - `unreachable`: the server could not be asked (the message says why);
 * - `task`: the server's record, live.
 */
export type CellPhase =
  | 'loading'
  | 'sending'
  | 'unsent'
  | 'missing'
  | 'deleted'
  | 'unreachable'
  | 'task';

/** What the view knows about its task, from the model. */
export interface ICellFacts {
  /** The store's record (the model keeps it current). */
  task: ITask | undefined;
  /**
   * The server's last answer: `found`, `absent` (404), `reserved` (404, but the id is
   * reserved: its inputs are on their way), `failed`, or not yet (`null`).
   */
  looked: 'found' | 'absent' | 'reserved' | 'failed' | null;
  /** The task was in the store once and then left it (a `deleted` change). */
  seen: boolean;
}

export function phaseOf(facts: ICellFacts, bundle: ITaskBundle): CellPhase {
  if (facts.task) {
    return 'task';
  }
  if (facts.seen) {
    return 'deleted';
  }
  if (facts.looked === 'reserved') {
    return 'sending';
  }
  if (bundle.sending > 0 && facts.looked === null) {
    return 'sending';
  }
  if (facts.looked === 'absent') {
    return bundle.sending > 0 ? 'unsent' : 'missing';
  }
  if (facts.looked === 'failed') {
    return 'unreachable';
  }
  return 'loading';
}

/** The line shown instead of a task (null for `task`). */
export function phaseLine(
  phase: CellPhase,
  bundle: ITaskBundle,
  failure = ''
): string | null {
  const id = bundle.task_id;
  switch (phase) {
    case 'loading':
      return `looking up task ${id}…`;
    case 'sending':
      return `sending inputs (${humanBytes(bundle.sending)}) from the kernel…`;
    case 'unsent':
      return `task ${id} never reached the server: the kernel stopped sending its inputs (${humanBytes(bundle.sending)})`;
    case 'missing':
      return `task ${id} is not on this server (deleted from the history, or launched on another server)`;
    case 'deleted':
      return `task ${id} was deleted from the history`;
    case 'unreachable':
      return `task ${id}: the server could not be asked${failure ? ` (${failure})` : ''}`;
    default:
      return null;
  }
}
