/** Which kinds the "New task" form offers: what the server says a kind needs. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { creatableKinds, formSchema, typedFreeValues } from '../src/kinds';
import { makeKind } from './fixtures';

describe('creatableKinds', () => {
  test('leaves out kinds that need a kernel or a kernel-made payload', () => {
    // Given kinds with every combination of the two flags
    const kinds = [
      makeKind({ name: 'count' }),
      makeKind({ name: 'code', needs_payload: true }),
      makeKind({ name: 'cell', needs_kernel: true }),
      makeKind({ name: 'both', needs_payload: true, needs_kernel: true })
    ];

    // When the form picks the ones it offers
    const offered = creatableKinds(kinds);

    // Then only the kind needing neither is left, in the server's order
    assert.deepEqual(
      offered.map(k => k.name),
      ['count']
    );
  });

  test('goes by the flags, not by names', () => {
    // Given a kind named `code` that, on this server, needs nothing from a kernel
    const kinds = [makeKind({ name: 'sleep' }), makeKind({ name: 'code' })];

    // Then both are offered
    assert.deepEqual(
      creatableKinds(kinds).map(k => k.name),
      ['sleep', 'code']
    );
  });
});

describe('formSchema', () => {
  test("an optional value (pydantic's anyOf with null) becomes one nullable field", () => {
    // Given the notebook kind's params as pydantic writes them
    const schema = {
      type: 'object',
      required: ['path'],
      properties: {
        path: { type: 'string', title: 'Path' },
        parameters: { type: 'object', additionalProperties: true },
        kernel_name: {
          anyOf: [{ type: 'string' }, { type: 'null' }],
          default: null,
          title: 'Kernel Name',
          description: "Default: the notebook's kernel."
        },
        timeout: {
          anyOf: [{ type: 'number', exclusiveMinimum: 0 }, { type: 'null' }],
          default: null
        }
      }
    };

    // When the form takes it
    const shown = formSchema(schema);

    // Then those fields are plain nullable fields with their title, description, default
    // and constraints; the rest is as it was
    assert.deepEqual(shown.properties.kernel_name, {
      type: ['string', 'null'],
      default: null,
      title: 'Kernel Name',
      description: "Default: the notebook's kernel."
    });
    assert.deepEqual(shown.properties.timeout, {
      type: ['number', 'null'],
      exclusiveMinimum: 0,
      default: null
    });
    assert.deepEqual(shown.properties.path, schema.properties.path);
    assert.deepEqual(shown.properties.parameters, schema.properties.parameters);
    assert.deepEqual(shown.required, ['path']);
  });

  test('a real choice between types, or of objects, stays a choice', () => {
    const schema = {
      type: 'object',
      properties: {
        either: { anyOf: [{ type: 'string' }, { type: 'integer' }] },
        three: {
          anyOf: [{ type: 'string' }, { type: 'integer' }, { type: 'null' }]
        },
        nested: { anyOf: [{ type: 'object' }, { type: 'null' }] },
        ref: { anyOf: [{ $ref: '#/$defs/X' }, { type: 'null' }] }
      }
    };
    assert.deepEqual(formSchema(schema), schema);
  });
});

describe('typedFreeValues', () => {
  const schema = {
    type: 'object',
    properties: {
      path: { type: 'string' },
      parameters: { type: 'object', additionalProperties: true },
      labels: {
        type: 'object',
        additionalProperties: { type: 'string' }
      }
    }
  };

  test('values of free keys read as JSON (or Python words), else as typed', () => {
    // Given what the form has after the user added parameters as text
    const params = {
      path: '42',
      parameters: {
        n: '3',
        rate: ' 0.5 ',
        full: 'true',
        flag: 'False',
        none: 'None',
        xs: '[1, 2]',
        code: '"007"',
        region: 'south',
        title: 'Q3 sales',
        already: 7
      },
      labels: { team: '3' }
    };

    // When the form sends them
    const sent = typedFreeValues(schema, params);

    // Then the free values are typed; declared fields and typed free keys are untouched
    assert.deepEqual(sent.parameters, {
      n: 3,
      rate: 0.5,
      full: true,
      flag: false,
      none: null,
      xs: [1, 2],
      code: '007',
      region: 'south',
      title: 'Q3 sales',
      already: 7
    });
    assert.equal(sent.path, '42');
    assert.deepEqual(sent.labels, { team: '3' });
    // And what the form holds is not changed
    assert.equal(params.parameters.n, '3');
  });
});
