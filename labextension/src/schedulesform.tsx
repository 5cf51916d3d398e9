/**
 * "New schedule" and Edit: the kind's parameter form (rjsf from `GET kinds`, as in
 * "New task") plus the trigger (every N seconds, or cron with its time zone), start/end,
 * the overlap and misfire policies and the name. As the user types, the server checks
 * the draft (`POST schedules?check_only=true`, debounced) and the form shows the next 5
 * fire times it computed, or its message under the field it names. The logic is in
 * schedulespec.ts (pure, tested); this file only wires inputs to it.
 */
import { FormComponent } from '@jupyterlab/ui-components';
import validator from '@rjsf/validator-ajv8';
import * as React from 'react';

import {
  KindsNotReady,
  useButtonsThatDoNotSubmit,
  useCreatableKinds
} from './newtask';
import {
  draftBody,
  draftChanges,
  draftFromSchedule,
  emptyDraft,
  EMPTY_PREVIEW,
  errorsFor,
  FormField,
  IFormErrors,
  IPreview,
  IScheduleDraft,
  Latest,
  previewFrom
} from './schedulespec';
import type { IBgTasksModel } from './tokens';
import type { ISchedule } from './types';
import { fireTimeWords, untilWords } from './words';

/** How long the user may pause typing before the draft is checked (ms). */
export const PREVIEW_DELAY = 300;

/** The time zones this browser knows, for the zone field's suggestions. */
function timezones(): string[] {
  const supported = (Intl as any).supportedValuesOf;
  try {
    return typeof supported === 'function' ? supported('timeZone') : [];
  } catch {
    return [];
  }
}

function FieldError(props: {
  errors: IFormErrors;
  field: FormField;
}): JSX.Element | null {
  const message = props.errors.fields[props.field];
  return message ? (
    <div className="jp-BgTasks-fieldError" data-field={props.field}>
      {message}
    </div>
  ) : null;
}

function Preview(props: {
  preview: IPreview;
  timezone: string | null;
}): JSX.Element {
  const { preview, timezone } = props;
  const now = Date.now();
  return (
    <div
      className="jp-BgTasks-preview"
      data-checking={preview.checking}
      aria-label="Next runs"
    >
      <div className="jp-BgTasks-previewTitle">
        Next runs{timezone ? ` (${timezone})` : ''}
        {preview.checking ? ' · checking…' : ''}
      </div>
      {preview.times.length ? (
        <ol className="jp-BgTasks-previewTimes">
          {preview.times.map(iso => (
            <li key={iso} data-time={iso}>
              {fireTimeWords(iso, timezone)}{' '}
              <span className="jp-BgTasks-previewIn">
                {untilWords(Date.parse(iso), now)}
              </span>
            </li>
          ))}
        </ol>
      ) : preview.checking ? null : (
        <div className="jp-BgTasks-previewNone">
          {Object.keys(preview.errors.fields).length || preview.errors.params
            ? 'None until the errors are fixed.'
            : 'It would never fire.'}
        </div>
      )}
    </div>
  );
}

export function ScheduleForm(props: {
  model: IBgTasksModel;
  /** Edit this schedule (its kind stays); none: a new one. */
  schedule?: ISchedule;
  onDone: (schedule: ISchedule) => void;
  onClose: () => void;
}): JSX.Element {
  const { model, schedule } = props;
  const editing = !!schedule;
  const [draft, setDraft] = React.useState<IScheduleDraft>(() =>
    schedule ? draftFromSchedule(schedule) : emptyDraft('')
  );
  const [preview, setPreview] = React.useState<IPreview>(EMPTY_PREVIEW);
  const [submitErrors, setSubmitErrors] = React.useState<IFormErrors | null>(
    null
  );
  const [busy, setBusy] = React.useState(false);
  const latest = React.useRef(new Latest());
  const zones = React.useMemo(timezones, []);
  const formRef = useButtonsThatDoNotSubmit();

  const { kinds, loadError } = useCreatableKinds(model, usable => {
    if (!editing && usable.length) {
      setDraft(d => (d.kind ? d : { ...d, kind: usable[0].name }));
    }
  });

  // The server's preview of the draft, PREVIEW_DELAY after the last keystroke.
  React.useEffect(() => {
    if (!draft.kind) {
      return;
    }
    const ticket = latest.current.next();
    setPreview(p => ({ ...p, checking: true }));
    const timer = setTimeout(() => {
      let body;
      try {
        body = draftBody(draft);
      } catch (error) {
        setPreview(previewFrom({ error }, draft));
        return;
      }
      model.schedules.check(body).then(
        reply => {
          if (latest.current.isCurrent(ticket)) {
            setPreview(previewFrom(reply, draft));
          }
        },
        error => {
          if (latest.current.isCurrent(ticket)) {
            setPreview(previewFrom({ error }, draft));
          }
        }
      );
    }, PREVIEW_DELAY);
    return () => clearTimeout(timer);
  }, [draft]);

  const change = (changes: Partial<IScheduleDraft>): void => {
    setSubmitErrors(null);
    setDraft(d => ({ ...d, ...changes }));
  };

  const submit = async (params: { [key: string]: any }): Promise<void> => {
    const full = { ...draft, params };
    setBusy(true);
    setSubmitErrors(null);
    try {
      const saved = schedule
        ? await model.schedules.update(schedule.id, draftChanges(full))
        : await model.schedules.create(draftBody(full));
      props.onDone(saved);
    } catch (error) {
      setSubmitErrors(errorsFor(error, full));
    } finally {
      setBusy(false);
    }
  };

  if (!kinds || loadError) {
    return <KindsNotReady kinds={kinds} loadError={loadError} />;
  }
  const kind = kinds.find(k => k.name === draft.kind);
  if (!kind) {
    return (
      <div className="jp-BgTasks-newTask jp-BgTasks-message">
        {editing
          ? `Kind ${draft.kind} cannot be edited from a browser.`
          : 'This server has no kind a browser can start.'}
      </div>
    );
  }
  const errors = submitErrors ?? preview.errors;
  const cron = draft.trigger === 'cron';
  const id = (name: string): string => `jp-BgTasks-schedule-${name}`;

  return (
    <div
      ref={formRef}
      className="jp-BgTasks-newTask jp-BgTasks-scheduleForm"
      aria-label={editing ? 'Edit schedule' : 'New schedule'}
    >
      <div className="jp-BgTasks-field">
        <label htmlFor={id('kind')}>Kind</label>
        <select
          id={id('kind')}
          className="jp-mod-styled"
          value={draft.kind}
          disabled={editing}
          title={editing ? 'A different kind is a new schedule' : undefined}
          onChange={e => change({ kind: e.target.value, params: {} })}
        >
          {kinds.map(k => (
            <option key={k.name} value={k.name}>
              {k.title || k.name}
            </option>
          ))}
        </select>
        <FieldError errors={errors} field="kind" />
      </div>
      <div className="jp-BgTasks-field">
        <label htmlFor={id('name')}>Name (optional)</label>
        <input
          id={id('name')}
          className="jp-mod-styled"
          value={draft.name}
          placeholder={kind.title || kind.name}
          onChange={e => change({ name: e.target.value })}
        />
        <FieldError errors={errors} field="name" />
      </div>
      <fieldset className="jp-BgTasks-trigger">
        <legend>Runs</legend>
        <label>
          <input
            type="radio"
            name={id('trigger')}
            value="every"
            checked={!cron}
            onChange={() => change({ trigger: 'every' })}
          />{' '}
          every N seconds
        </label>
        <label>
          <input
            type="radio"
            name={id('trigger')}
            value="cron"
            checked={cron}
            onChange={() => change({ trigger: 'cron' })}
          />{' '}
          on a cron schedule
        </label>
        {cron ? (
          <>
            <div className="jp-BgTasks-field">
              <label htmlFor={id('cron')}>
                Cron (minute hour day month weekday)
              </label>
              <input
                id={id('cron')}
                className="jp-mod-styled jp-BgTasks-code"
                value={draft.cron}
                placeholder="0 9 * * 1-5"
                onChange={e => change({ cron: e.target.value })}
              />
              <FieldError errors={errors} field="cron" />
            </div>
            <div className="jp-BgTasks-field">
              <label htmlFor={id('timezone')}>Time zone</label>
              <input
                id={id('timezone')}
                className="jp-mod-styled"
                list={id('zones')}
                value={draft.timezone}
                placeholder="UTC"
                onChange={e => change({ timezone: e.target.value })}
              />
              <datalist id={id('zones')}>
                {zones.map(z => (
                  <option key={z} value={z} />
                ))}
              </datalist>
              <FieldError errors={errors} field="timezone" />
            </div>
          </>
        ) : (
          <div className="jp-BgTasks-field">
            <label htmlFor={id('every')}>Every (seconds)</label>
            <input
              id={id('every')}
              className="jp-mod-styled"
              type="number"
              min={0.1}
              step="any"
              value={draft.every}
              onChange={e => change({ every: e.target.value })}
            />
            <FieldError errors={errors} field="every" />
          </div>
        )}
      </fieldset>
      <Preview preview={preview} timezone={cron ? draft.timezone : null} />
      <div className="jp-BgTasks-fieldRow">
        <div className="jp-BgTasks-field">
          <label htmlFor={id('start')}>Start (optional, your time)</label>
          <input
            id={id('start')}
            className="jp-mod-styled"
            type="datetime-local"
            step={1}
            value={draft.start}
            onChange={e => change({ start: e.target.value })}
          />
          <FieldError errors={errors} field="start_at" />
        </div>
        <div className="jp-BgTasks-field">
          <label htmlFor={id('end')}>End (optional, your time)</label>
          <input
            id={id('end')}
            className="jp-mod-styled"
            type="datetime-local"
            step={1}
            value={draft.end}
            onChange={e => change({ end: e.target.value })}
          />
          <FieldError errors={errors} field="end_at" />
        </div>
      </div>
      <div className="jp-BgTasks-fieldRow">
        <div className="jp-BgTasks-field">
          <label htmlFor={id('overlap')}>While a run is still going</label>
          <select
            id={id('overlap')}
            className="jp-mod-styled"
            value={draft.overlap}
            onChange={e =>
              change({ overlap: e.target.value as IScheduleDraft['overlap'] })
            }
          >
            <option value="skip">skip the new run</option>
            <option value="queue">queue it (one)</option>
            <option value="allow">run both</option>
          </select>
          <FieldError errors={errors} field="overlap" />
        </div>
        <div className="jp-BgTasks-field">
          <label htmlFor={id('misfire')}>Runs missed while down</label>
          <select
            id={id('misfire')}
            className="jp-mod-styled"
            value={draft.misfire}
            onChange={e =>
              change({ misfire: e.target.value as IScheduleDraft['misfire'] })
            }
          >
            <option value="coalesce">run once</option>
            <option value="skip">skip them</option>
          </select>
          <FieldError errors={errors} field="misfire" />
        </div>
      </div>
      <FormComponent
        key={kind.name}
        schema={kind.schema as any}
        formData={draft.params}
        validator={validator as any}
        extraErrors={errors.params}
        showErrorList={false}
        onChange={e => change({ params: e.formData ?? {} })}
        onSubmit={e => void submit(e.formData ?? {})}
        uiSchema={{ 'ui:title': '', 'ui:description': kind.description }}
      >
        <FieldError errors={errors} field="form" />
        <div className="jp-BgTasks-formButtons">
          <button
            type="button"
            className="jp-Button jp-mod-styled jp-mod-reject"
            onClick={props.onClose}
          >
            Close
          </button>
          <button
            type="submit"
            className="jp-Button jp-mod-styled jp-mod-accept"
            disabled={busy}
          >
            {busy ? 'Saving…' : editing ? 'Save schedule' : 'Create schedule'}
          </button>
        </div>
      </FormComponent>
    </div>
  );
}
