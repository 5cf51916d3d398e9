/** Which task ends a page notifies (endings.ts): the setting, and whose task it is. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { launchedFrom, notifyMode, worthNotifying } from '../src/endings';
import { makeTask } from './fixtures';

describe('notification rules', () => {
  test('the setting: every end, failures only, or none', () => {
    const finished = makeTask({ state: 'finished' });
    const failed = makeTask({ state: 'failed' });
    const cancelled = makeTask({ state: 'cancelled' });
    const all = [finished, failed, cancelled];
    assert.deepEqual(
      all.map(t => worthNotifying(t, 'all')),
      [true, true, true]
    );
    assert.deepEqual(
      all.map(t => worthNotifying(t, 'failures')),
      [false, true, true]
    );
    assert.deepEqual(
      all.map(t => worthNotifying(t, 'off')),
      [false, false, false]
    );
    assert.equal(notifyMode('failures'), 'failures');
    assert.equal(notifyMode(undefined), 'all');
    assert.equal(notifyMode('loud'), 'all');
  });

  test('a task is from an open notebook by its kernel, or by its path', () => {
    const open = { kernels: new Set(['k1']), paths: new Set(['sub/a.ipynb']) };
    const root = '/home/alice/work';
    const base = makeTask().origin;
    const byKernel = makeTask({
      origin: { ...base, kernel_id: 'k1', path: null }
    });
    const byPath = makeTask({
      origin: { ...base, kernel_id: 'k9', path: '/home/alice/work/sub/a.ipynb' }
    });
    const other = makeTask({
      origin: { ...base, kernel_id: 'k9', path: '/home/alice/work/b.ipynb' }
    });
    const rest = makeTask();
    assert.equal(launchedFrom(byKernel, open, root), true);
    assert.equal(launchedFrom(byPath, open, root), true);
    assert.equal(launchedFrom(other, open, root), false);
    assert.equal(launchedFrom(rest, open, root), false);
  });
});
