/**
 * Schedules kept live: the store's merge of the events websocket (snapshot `schedules`,
 * `schedule` messages) and REST listings, and the model feeding it (REST at start and
 * while the socket is down, the socket's word winning over an older listing).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { TasksModel } from '../src/model';
import { ScheduleStore } from '../src/schedulestore';
import { FakeApi, FakeClock, settle } from './fixtures';
import { FakeSchedulesApi, makeSchedule } from './schedulefixtures';

const names = (store: { list(): { name: string }[] }): string[] =>
  store.list().map(s => s.name);

describe('ScheduleStore', () => {
  test('a snapshot with schedules replaces the list, by name', () => {
    // Given a store that knows one schedule from REST
    const store = new ScheduleStore();
    store.replaceAll([makeSchedule({ name: 'gone' })]);

    // When a snapshot lists two others
    const changed = store.applyMessages([
      {
        type: 'snapshot',
        seq: 5,
        tasks: [],
        schedules: [makeSchedule({ name: 'b' }), makeSchedule({ name: 'a' })]
      }
    ]);

    // Then the list is the snapshot's, sorted by name
    assert.equal(changed, true);
    assert.deepEqual(names(store), ['a', 'b']);
    assert.equal(store.known, true);
  });

  test('a snapshot without schedules (an older server) leaves the list alone', () => {
    const store = new ScheduleStore();
    const kept = makeSchedule();
    store.replaceAll([kept]);
    assert.equal(
      store.applyMessages([{ type: 'snapshot', seq: 1, tasks: [] }]),
      false
    );
    assert.deepEqual(store.list(), [kept]);
  });

  test('schedule messages create, update and delete, in order', () => {
    // Given an empty snapshot
    const store = new ScheduleStore();
    store.applyMessages([
      { type: 'snapshot', seq: 1, tasks: [], schedules: [] }
    ]);
    assert.equal(store.known, true);
    const s = makeSchedule({ name: 'nightly' });

    // When it is created, then disabled in the same frame
    store.applyMessages([
      { type: 'schedule', change: 'created', schedule: s },
      {
        type: 'schedule',
        change: 'updated',
        schedule: { ...s, enabled: false }
      }
    ]);

    // Then the store has its latest record
    assert.equal(store.get(s.id)?.enabled, false);

    // When it is deleted
    store.applyMessages([{ type: 'schedule', change: 'deleted', schedule: s }]);

    // Then it is gone, and a late REST reply to a PATCH does not bring it back
    assert.equal(store.get(s.id), undefined);
    assert.equal(store.upsert({ ...s, enabled: true }), false);
    assert.deepEqual(store.list(), []);
  });

  test('numbered messages older than the snapshot or their last one are dropped', () => {
    const store = new ScheduleStore();
    const s = makeSchedule({ every: 10 });
    store.applyMessages([
      { type: 'snapshot', seq: 10, tasks: [], schedules: [s] }
    ]);

    store.applyMessages([
      {
        type: 'schedule',
        seq: 9,
        change: 'deleted',
        schedule: s
      },
      {
        type: 'schedule',
        seq: 12,
        change: 'updated',
        schedule: { ...s, every: 30 }
      },
      {
        type: 'schedule',
        seq: 11,
        change: 'updated',
        schedule: { ...s, every: 20 }
      }
    ]);

    assert.equal(store.get(s.id)?.every, 30);
  });

  test('a REST listing started before a websocket message is ignored', () => {
    // Given a REST read on its way
    const store = new ScheduleStore();
    const s = makeSchedule({ enabled: true });
    const token = store.readToken();

    // When the socket says the schedule was disabled, then the (older) listing lands
    store.applyMessages([
      { type: 'snapshot', seq: 1, tasks: [], schedules: [] },
      {
        type: 'schedule',
        change: 'created',
        schedule: { ...s, enabled: false }
      }
    ]);
    const applied = store.replaceAll([s], token);

    // Then the socket's word stands
    assert.equal(applied, false);
    assert.equal(store.get(s.id)?.enabled, false);

    // And a listing started after it applies
    assert.equal(store.replaceAll([s], store.readToken()), true);
    assert.equal(store.get(s.id)?.enabled, true);
  });
});

function setUp(): {
  api: FakeApi;
  schedulesApi: FakeSchedulesApi;
  clock: FakeClock;
  model: TasksModel;
} {
  const api = new FakeApi();
  const schedulesApi = new FakeSchedulesApi();
  const clock = new FakeClock();
  const model = new TasksModel({
    api,
    schedulesApi,
    clock,
    random: () => 1,
    pollInterval: 5,
    backoff: { base: 100, max: 1000 }
  });
  return { api, schedulesApi, clock, model };
}

describe('TasksModel.schedules', () => {
  test('read over REST at start, then kept live by the socket', async () => {
    // Given a server with one schedule
    const { api, schedulesApi, model } = setUp();
    const s = makeSchedule({ name: 'hourly' });
    schedulesApi.schedules = [s];
    let changes = 0;
    model.schedules.changed.connect(() => changes++);

    // When the model starts, before the socket's snapshot
    model.start();
    await settle();

    // Then the REST listing is shown
    assert.deepEqual(names(model.schedules), ['hourly']);
    assert.ok(changes > 0);

    // When the socket's snapshot and a change arrive
    api.socket.open();
    const other = makeSchedule({ name: 'daily' });
    api.socket.send({ type: 'snapshot', seq: 1, tasks: [], schedules: [s] });
    api.socket.send({ type: 'schedule', change: 'created', schedule: other });

    // Then the list follows them
    assert.deepEqual(names(model.schedules), ['daily', 'hourly']);
    model.dispose();
  });

  test('while the socket is down, polling reads the schedules too', async () => {
    const { api, schedulesApi, clock, model } = setUp();
    model.start();
    api.socket.open();
    api.socket.send({ type: 'snapshot', seq: 1, tasks: [], schedules: [] });
    await settle();
    const before = schedulesApi.lists;

    // When the socket drops and a schedule is made meanwhile
    schedulesApi.schedules = [makeSchedule({ name: 'made meanwhile' })];
    api.socket.drop();
    await new Promise(resolve => setTimeout(resolve, 50));

    // Then a poll read it
    assert.ok(schedulesApi.lists > before);
    assert.deepEqual(names(model.schedules), ['made meanwhile']);
    clock.timers = [];
    model.dispose();
  });

  test('a server without schedules (404) is unavailable, not an error', async () => {
    const { schedulesApi, model } = setUp();
    schedulesApi.failWith = Object.assign(new Error('Not Found'), {
      status: 404
    });
    model.start();
    await settle();
    assert.equal(model.schedules.available, false);
    assert.equal(model.schedules.error, null);
    model.dispose();
  });

  test('enable/disable merges the reply; runs ask for the schedule id', async () => {
    const { api, schedulesApi, model } = setUp();
    const s = makeSchedule();
    schedulesApi.schedules = [s];
    model.start();
    await settle();

    await model.schedules.update(s.id, { enabled: false });
    await model.schedules.runs(s.id);

    assert.deepEqual(schedulesApi.patched, [[s.id, { enabled: false }]]);
    assert.equal(model.schedules.get(s.id)?.enabled, false);
    assert.equal(api.lists[api.lists.length - 1].schedule_id, s.id);

    await model.schedules.remove(s.id);
    assert.equal(model.schedules.get(s.id), undefined);
    model.dispose();
  });
});
