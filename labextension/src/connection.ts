/**
 * The events connection: it keeps the websocket to `bgtasks/api/events` open,
 * reconnecting with backoff, and while the socket is down runs its owner's REST refresh
 * on a `@lumino/polling` schedule. It hands on the messages of each frame and says how
 * changes are being heard (`status`); what the messages mean is the model's business
 * (model.ts), so a test can drive either side alone.
 */
import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { backoffDelay, DEFAULT_BACKOFF, IBackoff } from './backoff';
import type { ITasksApi } from './request';
import { parseFrame } from './store';
import type { EventMessage } from './types';

/**
 * How changes are heard: `connecting` before the first frame, `live` once frames arrive,
 * `polling` while the socket is down (REST refreshes meanwhile), `disposed` at the end.
 */
export type ConnectionStatus = 'connecting' | 'live' | 'polling' | 'disposed';

/** A small seam over timers, so tests drive time. */
export interface IClock {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const defaultClock: IClock = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: handle => clearTimeout(handle as any)
};

export namespace EventsConnection {
  export interface IOptions {
    /** Only the socket half of the API: REST is the owner's, through `poll`. */
    api: Pick<ITasksApi, 'eventsUrl' | 'openSocket'>;
    /**
     * One REST refresh while the socket is down: read what the socket would have said.
     * A rejection makes the next refresh wait longer (the Poll backs off).
     */
    poll: () => Promise<void>;
    /** Polling interval while the websocket is down (ms). */
    pollInterval?: number;
    backoff?: IBackoff;
    random?: () => number;
    clock?: IClock;
    /** `@lumino/polling` standby; 'when-hidden' in the browser. */
    standby?: Poll.Standby;
  }
}

export class EventsConnection implements IDisposable {
  constructor(options: EventsConnection.IOptions) {
    this._api = options.api;
    this._refresh = options.poll;
    this._backoff = options.backoff ?? DEFAULT_BACKOFF;
    this._random = options.random ?? Math.random;
    this._clock = options.clock ?? defaultClock;
    this._poll = new Poll({
      auto: false,
      factory: () => this.pollOnce(),
      frequency: {
        interval: options.pollInterval ?? 2000,
        backoff: true,
        max: this._backoff.max
      },
      name: 'jupyter-bgtasks:poll',
      standby: options.standby ?? 'never'
    });
  }

  /** The status changed. */
  get statusChanged(): ISignal<this, ConnectionStatus> {
    return this._statusChanged;
  }

  /** The messages of one readable frame, in order (already `live` when it fires). */
  get received(): ISignal<this, EventMessage[]> {
    return this._received;
  }

  get status(): ConnectionStatus {
    return this._status;
  }

  get isDisposed(): boolean {
    return this._status === 'disposed';
  }

  /** Reconnect attempts since the socket last opened (for tests and diagnostics). */
  get attempt(): number {
    return this._attempt;
  }

  /** Open the websocket; later calls do nothing. */
  open(): void {
    if (this._opened || this.isDisposed) {
      return;
    }
    this._opened = true;
    this.connect();
  }

  /**
   * Send a message (JSON) on the websocket, e.g. `follow_log`. False when the socket is
   * not open: the sender asks again once the status is `live`.
   */
  send(message: unknown): boolean {
    const socket = this._socket;
    if (!socket || socket.readyState !== 1 /* OPEN */) {
      return false;
    }
    socket.send(JSON.stringify(message));
    return true;
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.setStatus('disposed');
    this._clock.clearTimeout(this._timer);
    this._poll.dispose();
    if (this._socket) {
      this._socket.onclose = null;
      this._socket.close();
      this._socket = null;
    }
    Signal.clearData(this);
  }

  private connect(): void {
    if (this.isDisposed) {
      return;
    }
    // While polling, the status stays `polling` until a frame proves the socket back.
    if (this._status !== 'polling') {
      this.setStatus('connecting');
    }
    let socket: WebSocket;
    try {
      socket = this._api.openSocket(this._api.eventsUrl());
    } catch {
      this.onSocketClosed();
      return;
    }
    this._socket = socket;
    socket.onopen = () => {
      this._attempt = 0;
    };
    socket.onmessage = (event: MessageEvent) => {
      let messages: EventMessage[];
      try {
        messages = parseFrame(String(event.data));
      } catch (error) {
        console.warn('jupyter-bgtasks: unreadable event frame', error);
        return;
      }
      if (this._status !== 'live') {
        // The snapshot arrived: the socket is the source of truth again.
        this.setStatus('live');
        void this._poll.stop();
      }
      this._received.emit(messages);
    };
    socket.onclose = () => this.onSocketClosed();
    socket.onerror = () => {
      /* onclose follows */
    };
  }

  private onSocketClosed(): void {
    this._socket = null;
    if (this.isDisposed) {
      return;
    }
    this._attempt++;
    // Meanwhile, REST keeps the list current.
    if (this._status !== 'polling') {
      this.setStatus('polling');
      void this._poll.start();
    }
    const delay = backoffDelay(this._attempt, this._backoff, this._random);
    this._timer = this._clock.setTimeout(() => this.connect(), delay);
  }

  private async pollOnce(): Promise<void> {
    // A tick already scheduled when the socket came back has nothing to do.
    if (this._status !== 'polling') {
      return;
    }
    await this._refresh();
  }

  private setStatus(status: ConnectionStatus): void {
    if (this._status !== status) {
      this._status = status;
      this._statusChanged.emit(status);
    }
  }

  private _api: Pick<ITasksApi, 'eventsUrl' | 'openSocket'>;
  private _refresh: () => Promise<void>;
  private _status: ConnectionStatus = 'connecting';
  private _opened = false;
  private _socket: WebSocket | null = null;
  private _attempt = 0;
  private _timer: unknown = null;
  private _poll: Poll;
  private _backoff: IBackoff;
  private _random: () => number;
  private _clock: IClock;
  private _statusChanged = new Signal<this, ConnectionStatus>(this);
  private _received = new Signal<this, EventMessage[]>(this);
}
