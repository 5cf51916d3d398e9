/**
 * Which kinds the panel's "New task" form offers. The server states what a kind needs
 * (`GET kinds`); the browser reads that instead of keeping its own list of kinds.
 */
import type { IKind } from './types';

/**
 * The kinds a browser can start: not those only a kernel can launch, nor those whose
 * tasks carry input bytes only a kernel makes (`%%bgtask`, `submit()`).
 */
export function creatableKinds(kinds: IKind[]): IKind[] {
  return kinds.filter(kind => !kind.needs_kernel && !kind.needs_payload);
}

/** A JSON Schema node (pydantic's output, as `GET kinds` sends it). */
type SchemaNode = { [key: string]: any };

/**
 * A kind's params schema as the browser forms render it. Pydantic writes an optional value
 * (`str | None = None`) as `anyOf: [{type: string}, {type: null}]`, which rjsf draws as a
 * "option 1 / option 2" picker; `type: ["string", "null"]` is the same value set and rjsf
 * draws it as the plain field (left empty: null, the server's default). Other schemas
 * pass through unchanged.
 */
export function formSchema(schema: SchemaNode): SchemaNode {
  const properties = schema?.properties;
  if (!properties || typeof properties !== 'object') {
    return schema;
  }
  const changed: SchemaNode = {};
  for (const [name, prop] of Object.entries<SchemaNode>(properties)) {
    changed[name] = nullableAsType(prop);
  }
  return { ...schema, properties: changed };
}

function nullableAsType(prop: SchemaNode): SchemaNode {
  const branches = prop?.anyOf;
  if (!Array.isArray(branches) || branches.length !== 2) {
    return prop;
  }
  const isNull = (b: SchemaNode) => b?.type === 'null';
  const value = branches.find(b => !isNull(b));
  if (
    !value ||
    !branches.some(isNull) ||
    typeof value.type !== 'string' ||
    ['object', 'array'].includes(value.type)
  ) {
    return prop;
  }
  const rest = { ...prop };
  delete rest.anyOf;
  return { ...value, ...rest, type: [value.type, 'null'] };
}

/** Python's words for JSON's, as people write them in a notebook. */
const PYTHON_WORDS: { [word: string]: boolean | null } = {
  True: true,
  False: false,
  None: null
};

/**
 * Params as the form sends them. A param of free keys (`additionalProperties` and no
 * declared properties, e.g. the notebook kind's `parameters`) gets its values as text
 * from the form; each one that reads as JSON (`3`, `0.5`, `true`, `null`, `[1, 2]`,
 * `"007"`) or is Python's `True`/`False`/`None` is sent as that value, any other text as
 * the string typed, as `%bgtask --notebook -p` reads its values.
 */
export function typedFreeValues(
  schema: SchemaNode,
  params: { [key: string]: any }
): { [key: string]: any } {
  const properties = schema?.properties ?? {};
  const out: { [key: string]: any } = { ...params };
  for (const [name, value] of Object.entries(params)) {
    const prop = properties[name];
    const free =
      prop?.type === 'object' &&
      !prop.properties &&
      (prop.additionalProperties === true ||
        (typeof prop.additionalProperties === 'object' &&
          !Object.keys(prop.additionalProperties).length));
    if (!free || !value || typeof value !== 'object' || Array.isArray(value)) {
      continue;
    }
    const typed: { [key: string]: any } = {};
    for (const [key, text] of Object.entries<any>(value)) {
      typed[key] = typeof text === 'string' ? readValue(text) : text;
    }
    out[name] = typed;
  }
  return out;
}

function readValue(text: string): any {
  const trimmed = text.trim();
  if (trimmed in PYTHON_WORDS) {
    return PYTHON_WORDS[trimmed];
  }
  try {
    return JSON.parse(trimmed);
  } catch {
    return text;
  }
}
