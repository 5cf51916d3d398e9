/**
 * The "New schedule" form's logic: the body a draft makes, Edit's draft of a schedule,
 * where the server's 400 messages go (by `field`), and which preview reply is shown.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  draftBody,
  draftChanges,
  draftFromSchedule,
  emptyDraft,
  errorsFor,
  FieldError,
  IScheduleDraft,
  isoToLocalInput,
  Latest,
  localInputToIso,
  previewFrom
} from '../src/schedulespec';
import { ApiError } from '../src/request';
import { makeSchedule } from './schedulefixtures';

const draft = (changes: Partial<IScheduleDraft> = {}): IScheduleDraft => ({
  ...emptyDraft('count', 'Europe/Berlin'),
  ...changes
});

describe('draftBody', () => {
  test('every: seconds, no cron nor zone; unset values left out', () => {
    assert.deepEqual(draftBody(draft({ every: '2', params: { times: 1 } })), {
      kind: 'count',
      params: { times: 1 },
      every: 2,
      overlap: 'skip',
      misfire: 'coalesce'
    });
  });

  test('cron with its zone, a name, start and end as ISO', () => {
    const body = draftBody(
      draft({
        trigger: 'cron',
        cron: ' 0 9 * * 1-5 ',
        name: ' standup ',
        start: '2026-05-04T09:00',
        end: '2026-06-04T09:00:30',
        overlap: 'queue',
        misfire: 'skip'
      })
    );
    assert.equal(body.cron, '0 9 * * 1-5');
    assert.equal(body.timezone, 'Europe/Berlin');
    assert.equal(body.every, undefined);
    assert.equal(body.name, 'standup');
    assert.equal(body.start_at, new Date('2026-05-04T09:00').toISOString());
    assert.equal(body.end_at, new Date('2026-06-04T09:00:30').toISOString());
    assert.equal(body.overlap, 'queue');
    assert.equal(body.misfire, 'skip');
  });

  test('what is not even a number is refused naming the field', () => {
    assert.throws(
      () => draftBody(draft({ every: 'soon' })),
      (e: FieldError) => e.field === 'every'
    );
    assert.throws(
      () => draftBody(draft({ every: '' })),
      (e: FieldError) => e.field === 'every'
    );
  });

  test('PATCH changes switch the trigger: the other one is cleared', () => {
    const changes = draftChanges(
      draft({ trigger: 'cron', cron: '*/5 * * * *' })
    );
    assert.equal(changes.every, null);
    assert.equal(changes.cron, '*/5 * * * *');
    const back = draftChanges(draft({ trigger: 'every', every: '30' }));
    assert.deepEqual(
      [back.every, back.cron, back.timezone, back.name, back.start_at],
      [30, null, null, null, null]
    );
  });
});

describe('Edit', () => {
  test("a schedule's draft makes the same schedule again", () => {
    const schedule = makeSchedule({
      name: 'weekdays',
      every: null,
      cron: '0 9 * * 1-5',
      timezone: 'America/New_York',
      start_at: '2026-05-04T13:00:00.000Z',
      overlap: 'allow',
      params: { times: 7 }
    });
    const d = draftFromSchedule(schedule);
    assert.equal(d.trigger, 'cron');
    assert.equal(d.start, isoToLocalInput('2026-05-04T13:00:00.000Z'));
    const changes = draftChanges(d);
    assert.deepEqual(changes, {
      name: 'weekdays',
      params: { times: 7 },
      every: null,
      cron: '0 9 * * 1-5',
      timezone: 'America/New_York',
      start_at: '2026-05-04T13:00:00.000Z',
      end_at: null,
      overlap: 'allow',
      misfire: 'coalesce'
    });
  });

  test('datetime-local round trip', () => {
    assert.equal(localInputToIso(''), null);
    const iso = '2026-05-04T13:00:05.000Z';
    assert.equal(localInputToIso(isoToLocalInput(iso)), iso);
  });
});

describe('errorsFor', () => {
  test("the server's 400 goes under the field it names", () => {
    const cron = draft({ trigger: 'cron' });
    assert.deepEqual(
      errorsFor(new ApiError(400, "'61 * * * *': bad minute", 'cron'), cron),
      { fields: { cron: "'61 * * * *': bad minute" } }
    );
    assert.deepEqual(
      errorsFor(
        new ApiError(400, "unknown time zone 'Mars'", 'timezone'),
        cron
      ),
      { fields: { timezone: "unknown time zone 'Mars'" } }
    );
    assert.deepEqual(
      errorsFor(
        new ApiError(400, 'must be at least 0.1 seconds', 'every'),
        draft()
      ),
      { fields: { every: 'must be at least 0.1 seconds' } }
    );
    assert.deepEqual(
      errorsFor(new ApiError(400, 'must be after start_at', 'end_at'), draft()),
      { fields: { end_at: 'must be after start_at' } }
    );
  });

  test("params.* goes into the kind's form (rjsf extra errors)", () => {
    assert.deepEqual(
      errorsFor(new ApiError(400, 'must be >= 0', 'params.times'), draft()),
      { fields: {}, params: { times: { __errors: ['must be >= 0'] } } }
    );
  });

  test('a field without an input shown goes to the foot of the form, named', () => {
    // every's message while the cron input is shown
    assert.deepEqual(
      errorsFor(
        new ApiError(400, 'give exactly one of every or cron', 'every'),
        draft({ trigger: 'cron' })
      ),
      { fields: { form: 'every: give exactly one of every or cron' } }
    );
    assert.deepEqual(
      errorsFor(new ApiError(0, 'The server is unreachable'), draft()),
      {
        fields: { form: 'The server is unreachable' }
      }
    );
    assert.deepEqual(
      errorsFor(new ApiError(400, 'unknown executor', 'executor'), draft()),
      { fields: { form: 'executor: unknown executor' } }
    );
  });
});

describe('preview', () => {
  test('the next fire times, or the errors and none', () => {
    const times = ['2026-05-04T07:00:00Z', '2026-05-05T07:00:00Z'];
    assert.deepEqual(previewFrom({ next_runs: times }, draft()), {
      checking: false,
      times,
      errors: { fields: {} }
    });
    const refused = previewFrom(
      { error: new ApiError(400, 'bad cron', 'cron') },
      draft({ trigger: 'cron' })
    );
    assert.deepEqual(refused.times, []);
    assert.deepEqual(refused.errors.fields, { cron: 'bad cron' });
    // the form's own refusal (not a number) shows the same way
    const local = previewFrom(
      { error: new FieldError('every', 'must be a number of seconds') },
      draft()
    );
    assert.deepEqual(local.errors.fields, {
      every: 'must be a number of seconds'
    });
  });

  test('only the latest check is shown', () => {
    const latest = new Latest();
    const first = latest.next();
    const second = latest.next();
    assert.equal(latest.isCurrent(first), false);
    assert.equal(latest.isCurrent(second), true);
  });
});
