/**
 * The "New schedule" form's logic, kept pure so it is tested without a browser: the
 * draft the inputs edit, the REST body it makes, the draft of an existing schedule (Edit),
 * where a refusal's message goes (the server's 400 names a `field`: `cron`, `timezone`,
 * `every`, `params.times`...), and which preview reply is still the latest.
 */
import type { ErrorSchema } from '@rjsf/utils';

import type {
  ICreateSchedule,
  ISchedule,
  IScheduleChanges,
  Misfire,
  Overlap
} from './types';

/** What the form's inputs hold, as typed (strings until sent). */
export interface IScheduleDraft {
  kind: string;
  params: { [key: string]: any };
  name: string;
  trigger: 'every' | 'cron';
  /** Seconds. */
  every: string;
  cron: string;
  timezone: string;
  /** `datetime-local` values (the browser's local time), '' when unset. */
  start: string;
  end: string;
  overlap: Overlap;
  misfire: Misfire;
}

/** Form fields that have an input of their own; other fields' messages go to `form`. */
export const FORM_FIELDS = [
  'kind',
  'name',
  'every',
  'cron',
  'timezone',
  'start_at',
  'end_at',
  'overlap',
  'misfire'
] as const;

export type FormField = (typeof FORM_FIELDS)[number] | 'form';

/** Where messages show: under a field's input, or for the kind's params, in rjsf. */
export interface IFormErrors {
  fields: Partial<Record<FormField, string>>;
  params?: ErrorSchema;
}

export const NO_ERRORS: IFormErrors = { fields: {} };

/** The browser's IANA time zone (`Europe/Berlin`), UTC when it cannot say. */
export function browserTimezone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

/** A draft for a new schedule of `kind`. */
export function emptyDraft(
  kind: string,
  timezone: string = browserTimezone()
): IScheduleDraft {
  return {
    kind,
    params: {},
    name: '',
    trigger: 'every',
    every: '60',
    cron: '0 9 * * 1-5',
    timezone,
    start: '',
    end: '',
    overlap: 'skip',
    misfire: 'coalesce'
  };
}

const two = (n: number): string => String(n).padStart(2, '0');

/** ISO time → a `datetime-local` value in the browser's time (seconds kept if any). */
export function isoToLocalInput(iso: string | null): string {
  const date = iso ? new Date(iso) : null;
  if (!date || isNaN(date.getTime())) {
    return '';
  }
  const day = `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())}`;
  const secs = date.getSeconds() ? `:${two(date.getSeconds())}` : '';
  return `${day}T${two(date.getHours())}:${two(date.getMinutes())}${secs}`;
}

/** A `datetime-local` value (browser time) → ISO UTC; null when empty. */
export function localInputToIso(value: string): string | null {
  if (!value.trim()) {
    return null;
  }
  const date = new Date(value);
  if (isNaN(date.getTime())) {
    throw new FieldError('start_at', `"${value}" is not a date and time`);
  }
  return date.toISOString();
}

/** A value the form itself refuses before asking the server. */
export class FieldError extends Error {
  constructor(
    readonly field: string,
    message: string
  ) {
    super(message);
  }
}

/** The draft of an existing schedule, for Edit. */
export function draftFromSchedule(schedule: ISchedule): IScheduleDraft {
  const cron = schedule.cron !== null && schedule.cron !== undefined;
  return {
    kind: schedule.kind,
    params: { ...schedule.params },
    name: schedule.name,
    trigger: cron ? 'cron' : 'every',
    every: cron ? '60' : String(schedule.every ?? ''),
    cron: schedule.cron ?? '0 9 * * 1-5',
    timezone: schedule.timezone ?? (cron ? 'UTC' : browserTimezone()),
    start: isoToLocalInput(schedule.start_at),
    end: isoToLocalInput(schedule.end_at),
    overlap: schedule.overlap,
    misfire: schedule.misfire
  };
}

/**
 * What the draft asks for, as the fields `PATCH` may change: one of every/cron (the
 * other null), the zone only with cron. Throws {@link FieldError} for what is not even a
 * number or a date; everything else is the server's to judge.
 */
export function draftChanges(draft: IScheduleDraft): IScheduleChanges {
  const trigger: IScheduleChanges =
    draft.trigger === 'every'
      ? { every: parseSeconds(draft.every), cron: null, timezone: null }
      : {
          every: null,
          cron: draft.cron.trim(),
          timezone: draft.timezone.trim() || null
        };
  let start_at: string | null;
  let end_at: string | null;
  try {
    start_at = localInputToIso(draft.start);
  } catch (error) {
    throw new FieldError('start_at', (error as Error).message);
  }
  try {
    end_at = localInputToIso(draft.end);
  } catch (error) {
    throw new FieldError('end_at', (error as Error).message);
  }
  return {
    name: draft.name.trim() || null,
    params: draft.params ?? {},
    ...trigger,
    start_at,
    end_at,
    overlap: draft.overlap,
    misfire: draft.misfire
  };
}

/** The body of `POST schedules` (and of its preview). */
export function draftBody(draft: IScheduleDraft): ICreateSchedule {
  const changes = draftChanges(draft);
  const body: ICreateSchedule = { kind: draft.kind, ...changes };
  // Unset values are left out: the server's defaults apply.
  for (const key of ['name', 'start_at', 'end_at', 'timezone'] as const) {
    if (body[key] === null) {
      delete body[key];
    }
  }
  if (body.every === null) {
    delete body.every;
  }
  if (body.cron === null) {
    delete body.cron;
  }
  return body;
}

function parseSeconds(text: string): number {
  const trimmed = text.trim();
  const value = Number(trimmed);
  if (!trimmed || !isFinite(value)) {
    throw new FieldError('every', 'must be a number of seconds');
  }
  return value;
}

/** A server field `params.a.b` as rjsf's extra errors; null for another field. */
export function paramsErrorSchema(
  field: string,
  message: string
): ErrorSchema | null {
  if (field !== 'params' && !field.startsWith('params.')) {
    return null;
  }
  const path = field === 'params' ? [] : field.slice(7).split('.');
  const root: any = {};
  let node = root;
  for (const key of path) {
    node = node[key] = {};
  }
  node.__errors = [message];
  return root as ErrorSchema;
}

/**
 * Where a refusal's message goes: under the input of the field it names (when the draft
 * shows that input: `cron` and `timezone` only with cron, `every` only with every), in
 * the kind's form for `params.*`, else at the form's foot.
 */
export function errorsFor(error: unknown, draft: IScheduleDraft): IFormErrors {
  const field = (error as { field?: string | null })?.field ?? 'form';
  const message =
    error instanceof Error
      ? error.message
      : String((error as { message?: unknown })?.message ?? error);
  const params = paramsErrorSchema(field, message);
  if (params) {
    return { fields: {}, params };
  }
  const hidden =
    draft.trigger === 'every'
      ? ['cron', 'timezone'].includes(field)
      : field === 'every';
  if (!hidden && (FORM_FIELDS as readonly string[]).includes(field)) {
    return { fields: { [field]: message } };
  }
  const shown = field === 'form' ? message : `${field}: ${message}`;
  return { fields: { form: shown } };
}

/** What the preview shows: the next fire times, or nothing and the errors. */
export interface IPreview {
  /** A check is on its way (the times shown are the previous draft's). */
  checking: boolean;
  times: string[];
  errors: IFormErrors;
}

export const EMPTY_PREVIEW: IPreview = {
  checking: false,
  times: [],
  errors: NO_ERRORS
};

/** The preview after the server's reply to `POST schedules?check_only=true`. */
export function previewFrom(
  outcome: { next_runs: string[] } | { error: unknown },
  draft: IScheduleDraft
): IPreview {
  if ('error' in outcome) {
    return {
      checking: false,
      times: [],
      errors: errorsFor(outcome.error, draft)
    };
  }
  return {
    checking: false,
    times: outcome.next_runs ?? [],
    errors: NO_ERRORS
  };
}

/**
 * Numbers requests so only the latest one's reply is shown: as the user types, an older
 * check can answer after a newer one.
 */
export class Latest {
  private _n = 0;
  next(): number {
    return ++this._n;
  }
  isCurrent(n: number): boolean {
    return n === this._n;
  }
}
