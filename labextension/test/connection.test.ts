/** The events connection: the websocket, reconnects with backoff, the polling fallback. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { backoffDelay } from '../src/backoff';
import { ConnectionStatus, EventsConnection } from '../src/connection';
import { EventMessage } from '../src/types';
import { failReconnects, FakeApi, FakeClock, makeTask } from './fixtures';

function setUp(): {
  api: FakeApi;
  clock: FakeClock;
  connection: EventsConnection;
  polls: () => number;
  statuses: ConnectionStatus[];
  frames: EventMessage[][];
} {
  const api = new FakeApi();
  const clock = new FakeClock();
  let polls = 0;
  const connection = new EventsConnection({
    api,
    clock,
    poll: async () => {
      polls++;
    },
    random: () => 1,
    pollInterval: 5,
    backoff: { base: 100, max: 1000 }
  });
  const statuses: ConnectionStatus[] = [];
  const frames: EventMessage[][] = [];
  connection.statusChanged.connect((_, status) => statuses.push(status));
  connection.received.connect((_, messages) => frames.push(messages));
  return { api, clock, connection, polls: () => polls, statuses, frames };
}

const wait = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

describe('backoffDelay', () => {
  test('doubles from base up to max, with jitter in the upper half', () => {
    const b = { base: 100, max: 1000 };
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map(a => backoffDelay(a, b, () => 1)),
      [100, 200, 400, 800, 1000, 1000]
    );
    assert.equal(
      backoffDelay(3, b, () => 0),
      200
    );
    for (let i = 0; i < 100; i++) {
      const d = backoffDelay(2, b);
      assert.ok(d >= 100 && d <= 200, String(d));
    }
  });
});

describe('EventsConnection', () => {
  test('the first readable frame makes it live and its messages are handed on', t => {
    // Given an opened connection, not yet live
    const { api, connection, statuses, frames } = setUp();
    t.mock.method(console, 'warn', () => undefined);
    connection.open();
    connection.open(); // a second call opens nothing more
    api.socket.open();
    assert.equal(api.sockets.length, 1);
    assert.equal(connection.status, 'connecting');

    // When an unreadable frame arrives
    api.socket.onmessage?.({ data: 'not json' });

    // Then it is skipped: still connecting, nothing handed on
    assert.equal(connection.status, 'connecting');
    assert.equal(frames.length, 0);

    // When the snapshot and then an array of task messages arrive
    const task = makeTask();
    api.socket.send({ type: 'snapshot', seq: 1, tasks: [task] });
    api.socket.send([
      { type: 'task', seq: 2, change: 'progress', task },
      { type: 'task', seq: 3, change: 'progress', task }
    ]);

    // Then it went live once, and each frame's messages came out in order
    assert.deepEqual(statuses, ['live']);
    assert.deepEqual(
      frames.map(f => f.map(m => m.seq)),
      [[1], [2, 3]]
    );
    connection.dispose();
  });

  test('a dropped socket is retried with growing delays, polling meanwhile', async () => {
    // Given a live connection
    const { api, clock, connection, polls, statuses } = setUp();
    connection.open();
    api.socket.open();
    api.socket.send({ type: 'snapshot', seq: 1, tasks: [] });
    assert.equal(polls(), 0);

    // When the socket drops, and every reconnect fails at once
    const delays = failReconnects(api, clock, 6);

    // Then the delays grow exponentially up to the cap, and the status stays `polling`
    assert.deepEqual(delays, [100, 200, 400, 800, 1000, 1000]);
    assert.equal(api.sockets.length, 7);
    assert.equal(connection.attempt, 7);
    assert.deepEqual(statuses, ['live', 'polling']);

    // And meanwhile the owner's REST refresh ran
    await wait(50);
    assert.ok(polls() > 0);

    // When a reconnect succeeds and its snapshot arrives
    clock.fire();
    api.socket.open();
    api.socket.send({ type: 'snapshot', seq: 40, tasks: [] });

    // Then it is live again, the backoff is reset and polling stops
    assert.equal(connection.status, 'live');
    assert.equal(connection.attempt, 0);
    await wait(20);
    const stopped = polls();
    await wait(50);
    assert.equal(polls(), stopped);
    connection.dispose();
  });

  test('a socket that cannot even be opened counts as a drop', () => {
    // Given an API whose websocket constructor throws
    const { api, clock, connection } = setUp();
    api.openSocket = () => {
      throw new Error('refused');
    };

    // When the connection opens
    connection.open();

    // Then it polls and schedules a reconnect
    assert.equal(connection.status, 'polling');
    assert.equal(connection.attempt, 1);
    assert.equal(clock.timers.length, 1);
    connection.dispose();
  });

  test('dispose closes the socket and cancels the pending reconnect', () => {
    // Given a connection waiting to reconnect, with a new socket open after that
    const { api, clock, connection, statuses } = setUp();
    connection.open();
    api.socket.drop();
    clock.fire();
    const socket = api.socket;
    api.socket.drop();
    assert.equal(clock.timers.length, 1);

    // When it is disposed
    connection.dispose();

    // Then no reconnect is left, and the status says so
    assert.equal(clock.timers.length, 0);
    assert.equal(socket.closed, true);
    assert.equal(connection.isDisposed, true);
    assert.deepEqual(statuses, ['polling', 'disposed']);
  });
});
