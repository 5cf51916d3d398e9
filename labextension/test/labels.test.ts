/** What a row says about a task's progress and its start, in words and numbers people read. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { formatNumber, progressLabel } from '../src/numbers';
import { elapsed, startsLabel } from '../src/time';
import { makeTask } from './fixtures';

describe('formatNumber', () => {
  test('whole numbers without decimals, big ones with thousands separators', () => {
    assert.equal(formatNumber(60), '60');
    assert.equal(formatNumber(0), '0');
    assert.equal(formatNumber(1234567), '1,234,567');
  });

  test('other numbers to 3 significant digits, big fractions to the unit', () => {
    assert.equal(formatNumber(10.26913099400008), '10.3');
    assert.equal(formatNumber(0.30000000000000004), '0.3');
    assert.equal(formatNumber(0.000123456), '0.000123');
    assert.equal(formatNumber(-0.5), '-0.5');
    assert.equal(formatNumber(1234.5678), '1,235');
  });
});

describe('progressLabel', () => {
  test('counts read as people write them', () => {
    // Given a sleep task's progress: seconds slept of 60
    const progress = {
      current: 10.26913099400008,
      total: 60,
      fraction: 0.17,
      message: ''
    };
    // Then the label is rounded, the total whole
    assert.equal(progressLabel(progress), '10.3 of 60');
    assert.equal(
      progressLabel({
        current: 1234567,
        total: 5000000,
        fraction: 0.25,
        message: ''
      }),
      '1,234,567 of 5,000,000'
    );
  });

  test("the task's own message wins; no total, no count", () => {
    assert.equal(
      progressLabel({ current: 3, total: 9, fraction: 0.3, message: 'step 3' }),
      'step 3'
    );
    assert.equal(
      progressLabel({ current: 3, total: null, fraction: null, message: '' }),
      ''
    );
  });
});

describe('a task that starts later', () => {
  const now = new Date(2026, 10, 30, 12, 0, 0).getTime();
  const queued = (runOn: number) =>
    makeTask({
      state: 'pending',
      created_at: new Date(now - 60_000).toISOString(),
      started_at: null,
      run_on: new Date(runOn).toISOString()
    });

  test('says in how long when soon', () => {
    assert.equal(elapsed(queued(now + 180_000), now), 'starts in 3 min');
    assert.equal(elapsed(queued(now + 45_000), now), 'starts in 45 s');
  });

  test('says the time of day when later today, and the date on another day', () => {
    assert.equal(
      elapsed(queued(new Date(2026, 10, 30, 14, 5).getTime()), now),
      'starts 14:05'
    );
    assert.equal(
      startsLabel(new Date(2026, 11, 1, 9, 0).getTime(), now),
      'starts 2026-12-01 09:00'
    );
  });

  test('once its time has come it is queued, counted from then', () => {
    assert.equal(elapsed(queued(now - 5_000), now), 'queued 5 s');
  });

  test('a task with no start time is queued since it was made', () => {
    const task = makeTask({
      state: 'pending',
      created_at: new Date(now - 65_000).toISOString(),
      started_at: null,
      run_on: null
    });
    assert.equal(elapsed(task, now), 'queued 1 min 5 s');
  });
});
