/** Schedules in words: the trigger, the countdown to the next run, the preview's times. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  fireTimeWords,
  nextFire,
  nextFireWords,
  spanWords,
  triggerWords,
  untilWords
} from '../src/words';

const trigger = (
  every: number | null,
  cron: string | null = null,
  tz: string | null = null
) => triggerWords({ every, cron, timezone: tz });

describe('triggerWords', () => {
  test('every in its largest whole units', () => {
    assert.equal(trigger(30), 'every 30 s');
    assert.equal(trigger(300), 'every 5 min');
    assert.equal(trigger(0.5), 'every 0.5 s');
    assert.equal(trigger(2), 'every 2 s');
    assert.equal(trigger(90), 'every 1 min 30 s');
    assert.equal(trigger(5400), 'every 1 h 30 min');
    assert.equal(trigger(7200), 'every 2 h');
    assert.equal(trigger(86400), 'every 1 d');
    assert.equal(trigger(60.25), 'every 1 min 0.25 s');
  });

  test('cron as written, with its zone (UTC when unset)', () => {
    assert.equal(
      trigger(null, '0 9 * * 1-5', 'Europe/Berlin'),
      '0 9 * * 1-5 (Europe/Berlin)'
    );
    assert.equal(trigger(null, '*/5 * * * *'), '*/5 * * * * (UTC)');
  });

  test('spans', () => {
    assert.equal(spanWords(1), '1 s');
    assert.equal(spanWords(3661), '1 h 1 min 1 s');
  });
});

describe('next fire', () => {
  const now = Date.UTC(2026, 4, 4, 9, 0, 0);
  const at = (s: number) => new Date(now + s * 1000).toISOString();

  test('counts down in seconds, minutes, hours, days', () => {
    assert.equal(untilWords(now + 4200, now), 'in 5 s');
    assert.equal(untilWords(now + 59_000, now), 'in 59 s');
    assert.equal(untilWords(now + 250_000, now), 'in 4 min 10 s');
    assert.equal(untilWords(now + 300_000, now), 'in 5 min');
    assert.equal(untilWords(now + 7_500_000, now), 'in 2 h 5 min');
    assert.equal(
      untilWords(now + (3 * 86400 + 4 * 3600) * 1000, now),
      'in 3 d 4 h'
    );
    assert.equal(untilWords(now - 1000, now), 'now');
  });

  test('the first of next_runs still ahead, so it ticks between updates', () => {
    const schedule = {
      enabled: true,
      next_runs: [at(-2), at(2), at(4)],
      next_fire_at: at(-2)
    };
    assert.equal(nextFire(schedule, now), now + 2000);
    assert.equal(nextFireWords(schedule, now), 'in 2 s');
    assert.equal(nextFireWords(schedule, now + 3000), 'in 1 s');
  });

  test('disabled, due now, and never again', () => {
    assert.equal(
      nextFireWords(
        { enabled: false, next_runs: [at(5)], next_fire_at: at(5) },
        now
      ),
      'disabled'
    );
    assert.equal(
      nextFireWords(
        { enabled: true, next_runs: [at(-1)], next_fire_at: at(-1) },
        now
      ),
      'now'
    );
    assert.equal(
      nextFireWords({ enabled: true, next_runs: [], next_fire_at: null }, now),
      'no more runs'
    );
  });

  test("fire times in the schedule's zone", () => {
    // 07:00 UTC is 09:00 in Berlin in summer time
    assert.equal(
      fireTimeWords('2026-05-04T07:00:00Z', 'Europe/Berlin'),
      'Mon 2026-05-04 09:00:00'
    );
    assert.equal(
      fireTimeWords('2026-05-04T07:00:00.500Z', 'UTC'),
      'Mon 2026-05-04 07:00:00.500'
    );
    // An unknown zone falls back to the browser's, not an exception
    assert.match(
      fireTimeWords('2026-05-04T07:00:00Z', 'Mars/Base'),
      /^\w{3} 2026-05-0/
    );
  });
});
