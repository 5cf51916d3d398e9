/**
 * "New task": a form generated from the kind's JSON Schema (`GET kinds`) with
 * JupyterLab's own rjsf `FormComponent`. The server has the last word: a 400's
 * `{message, field}` is shown beside the field it names.
 */
import { FormComponent } from '@jupyterlab/ui-components';
import type { ErrorSchema } from '@rjsf/utils';
import validator from '@rjsf/validator-ajv8';
import * as React from 'react';

import { errorText } from './errors';
import { creatableKinds, formSchema, typedFreeValues } from './kinds';
import type { IBgTasksModel } from './tokens';
import type { IKind, ITask } from './types';

/**
 * The kinds a browser form may create (`GET kinds`, read once per form; their schemas as
 * the form draws them, `formSchema`), and why there are none yet. `onLoaded` picks the
 * form's first kind.
 */
export function useCreatableKinds(
  model: IBgTasksModel,
  onLoaded: (kinds: IKind[]) => void
): { kinds: IKind[] | null; loadError: string | null } {
  const [kinds, setKinds] = React.useState<IKind[] | null>(null);
  const [loadError, setLoadError] = React.useState<string | null>(null);
  const loaded = React.useRef(onLoaded);
  loaded.current = onLoaded;
  React.useEffect(() => {
    model.api.kinds().then(
      list => {
        const usable = creatableKinds(list.kinds).map(kind => ({
          ...kind,
          schema: formSchema(kind.schema)
        }));
        setKinds(usable);
        loaded.current(usable);
      },
      error => setLoadError(errorText(error))
    );
  }, [model]);
  return { kinds, loadError };
}

/** What a form shows instead of itself while its kinds are not there (null once they are). */
export function KindsNotReady(props: {
  kinds: IKind[] | null;
  loadError: string | null;
}): JSX.Element | null {
  const { kinds, loadError } = props;
  if (loadError) {
    return (
      <div className="jp-BgTasks-newTask jp-BgTasks-message jp-mod-error">
        Could not read the task kinds: {loadError}
      </div>
    );
  }
  if (!kinds) {
    return (
      <div className="jp-BgTasks-newTask jp-BgTasks-message">
        Loading kinds…
      </div>
    );
  }
  if (!kinds.length) {
    return (
      <div className="jp-BgTasks-newTask jp-BgTasks-message">
        This server has no kind a browser can start.
      </div>
    );
  }
  return null;
}

/**
 * A ref for the element around a `FormComponent` whose Add and Remove buttons must not
 * submit it. JupyterLab's form templates draw them (an object's free keys, such as the
 * notebook kind's `parameters`; an array's items) without a `type`, and a button without
 * one submits its form: "Add" would run the task. After each render, every button left
 * without a type in there becomes `type="button"` (the submit buttons say `submit`).
 */
export function useButtonsThatDoNotSubmit(): React.RefObject<HTMLDivElement> {
  const ref = React.useRef<HTMLDivElement>(null);
  React.useEffect(() => {
    ref.current
      ?.querySelectorAll('form button:not([type])')
      .forEach(button => button.setAttribute('type', 'button'));
  });
  return ref;
}

/** Server field (`params.times`) → rjsf extra errors, or null for a non-param field. */
export function paramError(field: string, message: string): ErrorSchema | null {
  if (!field.startsWith('params.')) {
    return null;
  }
  const path = field.slice('params.'.length).split('.');
  const root: any = {};
  let node = root;
  for (const key of path) {
    node = node[key] = {};
  }
  node.__errors = [message];
  return root as ErrorSchema;
}

export function NewTaskForm(props: {
  model: IBgTasksModel;
  onCreated: (task: ITask) => void;
  onClose: () => void;
}): JSX.Element {
  const { model } = props;
  const [kindName, setKindName] = React.useState('');
  const [name, setName] = React.useState('');
  const [formData, setFormData] = React.useState<any>({});
  const [fieldErrors, setFieldErrors] = React.useState<{ [f: string]: string }>(
    {}
  );
  const [extraErrors, setExtraErrors] = React.useState<
    ErrorSchema | undefined
  >();
  const [busy, setBusy] = React.useState(false);
  const formRef = useButtonsThatDoNotSubmit();

  const { kinds, loadError } = useCreatableKinds(model, usable => {
    if (usable.length) {
      setKindName(usable[0].name);
    }
  });

  const kind = kinds?.find(k => k.name === kindName);

  const submit = async (params: any): Promise<void> => {
    if (!kind) {
      return;
    }
    setBusy(true);
    setFieldErrors({});
    setExtraErrors(undefined);
    try {
      const task = await model.create({
        kind: kind.name,
        params: typedFreeValues(kind.schema, params),
        ...(name.trim() ? { name: name.trim() } : {})
      });
      setFormData({});
      setName('');
      props.onCreated(task);
    } catch (error) {
      const field = (error as { field?: string | null }).field ?? 'form';
      const message = errorText(error);
      const extra = paramError(field, message);
      if (extra) {
        setExtraErrors(extra);
      } else {
        setFieldErrors({
          [field in { name: 1, kind: 1 } ? field : 'form']: message
        });
      }
    } finally {
      setBusy(false);
    }
  };

  if (!kinds?.length) {
    return <KindsNotReady kinds={kinds} loadError={loadError} />;
  }

  return (
    <div className="jp-BgTasks-newTask" aria-label="New task" ref={formRef}>
      <div className="jp-BgTasks-field">
        <label htmlFor="jp-BgTasks-kind">Kind</label>
        <select
          id="jp-BgTasks-kind"
          className="jp-mod-styled"
          value={kindName}
          onChange={e => {
            setKindName(e.target.value);
            setFormData({});
            setExtraErrors(undefined);
            setFieldErrors({});
          }}
        >
          {kinds.map(k => (
            <option key={k.name} value={k.name}>
              {k.title || k.name}
            </option>
          ))}
        </select>
        {fieldErrors.kind ? (
          <div className="jp-BgTasks-fieldError">{fieldErrors.kind}</div>
        ) : null}
      </div>
      <div className="jp-BgTasks-field">
        <label htmlFor="jp-BgTasks-name">Name (optional)</label>
        <input
          id="jp-BgTasks-name"
          className="jp-mod-styled"
          value={name}
          placeholder={kind?.title || kindName}
          onChange={e => setName(e.target.value)}
        />
        {fieldErrors.name ? (
          <div className="jp-BgTasks-fieldError" data-field="name">
            {fieldErrors.name}
          </div>
        ) : null}
      </div>
      {kind ? (
        <FormComponent
          key={kind.name}
          schema={kind.schema as any}
          formData={formData}
          validator={validator as any}
          extraErrors={extraErrors}
          showErrorList={false}
          onChange={e => setFormData(e.formData)}
          onSubmit={e => void submit(e.formData ?? {})}
          uiSchema={{ 'ui:title': '', 'ui:description': kind.description }}
        >
          {fieldErrors.form ? (
            <div className="jp-BgTasks-fieldError" data-field="form">
              {fieldErrors.form}
            </div>
          ) : null}
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
              {busy ? 'Starting…' : 'Run task'}
            </button>
          </div>
        </FormComponent>
      ) : null}
    </div>
  );
}
