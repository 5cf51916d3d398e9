/**
 * The REST client: every route under `{base_url}bgtasks/api/`, through JupyterLab's
 * `ServerConnection` (its token, cookies and XSRF header, as for any core service).
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import type {
  ICreateSchedule,
  ICreateTask,
  IErrorReply,
  IKindList,
  IListQuery,
  ILog,
  ISchedule,
  IScheduleChanges,
  IScheduleList,
  ISchedulePreview,
  ITask,
  ITaskPage
} from './types';

/** Path of the REST API under the server's base URL. */
export const API_PATH = 'bgtasks/api';

/** A refused request: `status` is the HTTP code, `field` the culprit of a 400. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field: string | null = null,
    /** A 404 for an id reserved on the server whose task is still being sent. */
    readonly reserved = false
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** What the model and the views need from the server; tests supply their own. */
export interface ITasksApi {
  list(query: IListQuery): Promise<ITaskPage>;
  get(id: string): Promise<ITask>;
  create(body: ICreateTask): Promise<ITask>;
  cancel(id: string): Promise<ITask>;
  /** A new task from an ended one's stored spec and input (`POST tasks/{id}/retry`). */
  retry(id: string): Promise<ITask>;
  remove(id: string): Promise<ITask | null>;
  log(id: string, offset: number): Promise<ILog>;
  kinds(): Promise<IKindList>;
  /** The URL of the events websocket, with the token when the server wants it there. */
  eventsUrl(): string;
  /** Open a websocket the way JupyterLab opens its own. */
  openSocket(url: string): WebSocket;
}

/** The `schedules` routes (a server without them answers 404). */
export interface ISchedulesApi {
  listSchedules(): Promise<IScheduleList>;
  getSchedule(id: string): Promise<ISchedule>;
  createSchedule(body: ICreateSchedule): Promise<ISchedule>;
  /** Validate and compute the next fire times; nothing is stored (`check_only`). */
  checkSchedule(body: ICreateSchedule): Promise<ISchedulePreview>;
  patchSchedule(id: string, changes: IScheduleChanges): Promise<ISchedule>;
  removeSchedule(id: string): Promise<void>;
}

/** {@link ITasksApi} and {@link ISchedulesApi} over `ServerConnection`. */
export class TasksApi implements ITasksApi, ISchedulesApi {
  constructor(
    readonly settings: ServerConnection.ISettings = ServerConnection.makeSettings()
  ) {}

  list(query: IListQuery): Promise<ITaskPage> {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined && value !== null && value !== '') {
        search.set(key, String(value));
      }
    }
    const qs = search.toString();
    return this.request<ITaskPage>(`tasks${qs ? `?${qs}` : ''}`);
  }

  get(id: string): Promise<ITask> {
    return this.request<ITask>(`tasks/${encodeURIComponent(id)}`);
  }

  create(body: ICreateTask): Promise<ITask> {
    return this.request<ITask>('tasks', {
      method: 'POST',
      body: JSON.stringify(body)
    });
  }

  cancel(id: string): Promise<ITask> {
    return this.request<ITask>(`tasks/${encodeURIComponent(id)}/cancel`, {
      method: 'POST'
    });
  }

  retry(id: string): Promise<ITask> {
    return this.request<ITask>(`tasks/${encodeURIComponent(id)}/retry`, {
      method: 'POST'
    });
  }

  remove(id: string): Promise<ITask | null> {
    return this.request<ITask | null>(`tasks/${encodeURIComponent(id)}`, {
      method: 'DELETE'
    });
  }

  log(id: string, offset: number): Promise<ILog> {
    return this.request<ILog>(
      `tasks/${encodeURIComponent(id)}/log?offset=${Math.max(0, offset)}`
    );
  }

  kinds(): Promise<IKindList> {
    return this.request<IKindList>('kinds');
  }

  listSchedules(): Promise<IScheduleList> {
    return this.request<IScheduleList>('schedules');
  }

  getSchedule(id: string): Promise<ISchedule> {
    return this.request<ISchedule>(`schedules/${encodeURIComponent(id)}`);
  }

  createSchedule(body: ICreateSchedule): Promise<ISchedule> {
    return this.request<ISchedule>('schedules', {
      method: 'POST',
      body: JSON.stringify(body)
    });
  }

  checkSchedule(body: ICreateSchedule): Promise<ISchedulePreview> {
    return this.request<ISchedulePreview>('schedules?check_only=true', {
      method: 'POST',
      body: JSON.stringify(body)
    });
  }

  patchSchedule(id: string, changes: IScheduleChanges): Promise<ISchedule> {
    return this.request<ISchedule>(`schedules/${encodeURIComponent(id)}`, {
      method: 'PATCH',
      body: JSON.stringify(changes)
    });
  }

  async removeSchedule(id: string): Promise<void> {
    await this.request<null>(`schedules/${encodeURIComponent(id)}`, {
      method: 'DELETE'
    });
  }

  eventsUrl(): string {
    // As JupyterLab does for kernels and terminals: the token goes in the query only
    // when the settings say the server wants it there (cookies carry it otherwise).
    let url = URLExt.join(this.settings.wsUrl, API_PATH, 'events');
    const token = this.settings.token;
    if (this.settings.appendToken && token) {
      url += `?token=${encodeURIComponent(token)}`;
    }
    return url;
  }

  openSocket(url: string): WebSocket {
    return new this.settings.WebSocket(url);
  }

  private async request<T>(path: string, init: RequestInit = {}): Promise<T> {
    const url = URLExt.join(this.settings.baseUrl, API_PATH, path);
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(url, init, this.settings);
    } catch (error) {
      throw new ApiError(0, `The server is unreachable: ${String(error)}`);
    }
    const text = await response.text();
    let data: any = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!response.ok) {
      const reply = (data ?? {}) as IErrorReply;
      throw new ApiError(
        response.status,
        reply.message || response.statusText || `HTTP ${response.status}`,
        reply.field ?? null,
        reply.reserved === true
      );
    }
    return data as T;
  }
}
