/** Which kinds the "New task" form offers: what the server says a kind needs. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { creatableKinds } from '../src/kinds';
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
