/**
 * What a task's cell output says (cellstate.ts): the bundle read, the lines mirroring the
 * kernel widget, the bar, and the phase shown before or instead of the server's record.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  barValue,
  canCancel,
  cellTiming,
  clock,
  countLine,
  humanBytes,
  ITaskBundle,
  noteOf,
  parseBundle,
  phaseLine,
  phaseOf
} from '../src/cellstate';
import { makeTask } from './fixtures';

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const iso = (ms: number) => new Date(ms).toISOString();

function bundle(overrides: Partial<ITaskBundle> = {}): ITaskBundle {
  return {
    version: 1,
    task_id: 'T1',
    name: 'cell',
    sending: 0,
    note: null,
    ...overrides
  };
}

describe('parseBundle', () => {
  test('reads the kernel bundle and tolerates missing optional keys', () => {
    assert.deepEqual(
      parseBundle({
        version: 1,
        task_id: 'T1',
        name: 'x',
        sending: 300,
        note: 'n'
      }),
      bundle({ name: 'x', sending: 300, note: 'n' })
    );
    assert.deepEqual(
      parseBundle({ version: 1, task_id: 'T1' }),
      bundle({ name: '' })
    );
  });

  test('says why an output cannot be read instead of guessing', () => {
    assert.match(String(parseBundle(null)), /not a JSON object/);
    assert.match(
      String(parseBundle({ version: 2, task_id: 'T' })),
      /version 2/
    );
    assert.match(String(parseBundle({ version: 1 })), /no task_id/);
  });
});

describe('lines mirroring the kernel widget', () => {
  test('sizes and durations', () => {
    assert.equal(humanBytes(314_572_800), '315 MB');
    assert.equal(humanBytes(1500), '1.5 kB');
    assert.equal(humanBytes(12), '12 B');
    assert.equal(clock(12), '0:12');
    assert.equal(clock(3723), '1:02:03');
  });

  test('elapsed and ETA while running, elapsed once ended, when a run_on starts', () => {
    const running = makeTask({
      state: 'running',
      started_at: iso(T0),
      progress: { current: 1, total: 4, fraction: 0.25, message: '' }
    });
    assert.equal(cellTiming(running, T0 + 10_000), 'elapsed 0:10 · ETA 0:30');
    const done = {
      ...running,
      state: 'finished' as const,
      finished_at: iso(T0 + 5000)
    };
    assert.equal(cellTiming(done, T0 + 99_000), 'elapsed 0:05');
    const later = makeTask({ state: 'pending', run_on: iso(T0 + 180_000) });
    assert.equal(cellTiming(later, T0), 'starts in 3 min');
    assert.equal(cellTiming(makeTask({ state: 'pending' }), T0), 'waiting');
  });

  test('the count and the message', () => {
    assert.equal(
      countLine({ current: 3, total: 10, fraction: 0.3, message: 'step 3' }),
      '3 / 10 · step 3'
    );
    assert.equal(
      countLine({ current: 1234567, total: null, fraction: null, message: '' }),
      '1,234,567'
    );
    assert.equal(
      countLine({ current: 0, total: null, fraction: null, message: '' }),
      ''
    );
  });
});

describe('the bar and Cancel', () => {
  test('indeterminate while running without a total, full once finished', () => {
    const noTotal = { current: 5, total: null, fraction: null, message: '' };
    assert.equal(
      barValue(makeTask({ state: 'running', progress: noTotal })),
      null
    );
    assert.equal(
      barValue(makeTask({ state: 'finished', progress: noTotal })),
      1
    );
    assert.equal(
      barValue(makeTask({ state: 'pending', progress: noTotal })),
      0
    );
    assert.equal(
      barValue(
        makeTask({
          state: 'failed',
          progress: { current: 1, total: 2, fraction: 0.5, message: '' }
        })
      ),
      0.5
    );
  });

  test('Cancel acts only on a pending or running task', () => {
    assert.equal(canCancel(makeTask({ state: 'running' })), true);
    assert.equal(canCancel(makeTask({ state: 'pending' })), true);
    assert.equal(canCancel(makeTask({ state: 'cancelling' })), false);
    assert.equal(canCancel(makeTask({ state: 'finished' })), false);
  });

  test("the server's note wins over the one the kernel displayed", () => {
    const b = bundle({ note: 'superseded task X' });
    assert.equal(
      noteOf(makeTask({ note: 'outputs set: a' }), b),
      'outputs set: a'
    );
    assert.equal(noteOf(makeTask(), b), 'superseded task X');
    assert.equal(noteOf(undefined, bundle()), '');
  });
});

describe('phaseOf', () => {
  const task = makeTask();
  test('the record, once the store has it, whatever the bundle said', () => {
    const facts = { task, looked: 'absent' as const, seen: true };
    assert.equal(phaseOf(facts, bundle({ sending: 300 })), 'task');
  });

  test('inputs still being sent: not yet on the server is expected', () => {
    const b = bundle({ sending: 300_000_000 });
    // Before the first answer, and while the server says the id is reserved
    for (const looked of [null, 'reserved'] as const) {
      assert.equal(
        phaseOf({ task: undefined, looked, seen: false }, b),
        'sending'
      );
    }
    assert.equal(
      phaseLine('sending', b),
      'sending inputs (300 MB) from the kernel…'
    );
    // A reserved id is awaited even when the kernel displayed it after its send
    assert.equal(
      phaseOf({ task: undefined, looked: 'reserved', seen: false }, bundle()),
      'sending'
    );
  });

  test('inputs that never arrived: the server no longer expects them', () => {
    const b = bundle({ sending: 300_000_000 });
    const facts = { task: undefined, looked: 'absent' as const, seen: false };
    assert.equal(phaseOf(facts, b), 'unsent');
    assert.match(
      String(phaseLine('unsent', b)),
      /never reached the server: the kernel stopped sending its inputs \(300 MB\)/
    );
  });

  test('unknown to the server, deleted while shown, or not asked yet', () => {
    assert.equal(
      phaseOf({ task: undefined, looked: 'absent', seen: false }, bundle()),
      'missing'
    );
    assert.match(String(phaseLine('missing', bundle())), /not on this server/);
    assert.equal(
      phaseOf({ task: undefined, looked: 'found', seen: true }, bundle()),
      'deleted'
    );
    assert.equal(
      phaseOf({ task: undefined, looked: null, seen: false }, bundle()),
      'loading'
    );
    assert.equal(
      phaseOf(
        { task: undefined, looked: 'failed', seen: false },
        bundle({ sending: 5 })
      ),
      'unreachable'
    );
  });
});
