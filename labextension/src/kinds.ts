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
