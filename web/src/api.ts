// The one door to the server's JSON API: every call goes through `request`, so every error the
// server sends is turned into an `ApiError` carrying its code and message for the page to show.

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public field?: string,
    public requestId?: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export interface List<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
}

/** Called when the server answers 401: the app shows the login page. */
let onUnauthenticated: () => void = () => {};
export function setUnauthenticatedHandler(f: () => void) {
  onUnauthenticated = f;
}

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const init: RequestInit = {
    method,
    credentials: "same-origin",
    headers: { Accept: "application/json" },
  };
  if (body !== undefined) {
    (init.headers as Record<string, string>)["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp: Response;
  try {
    resp = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, "network", `cannot reach the server: ${(e as Error).message}`);
  }
  if (resp.status === 204) return undefined as T;
  const text = await resp.text();
  let json: any = undefined;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON: handled below */
  }
  if (!resp.ok) {
    const err = json?.error;
    if (resp.status === 401 && !path.startsWith("/api/auth/login")) onUnauthenticated();
    throw new ApiError(
      resp.status,
      err?.code ?? `http_${resp.status}`,
      err?.message ?? `${method} ${path}: HTTP ${resp.status}`,
      err?.field,
      err?.request_id,
    );
  }
  return json as T;
}

export const api = {
  get: <T>(path: string) => request<T>("GET", path),
  post: <T>(path: string, body?: unknown) => request<T>("POST", path, body ?? {}),
  patch: <T>(path: string, body: unknown) => request<T>("PATCH", path, body),
  del: <T = void>(path: string) => request<T>("DELETE", path),
};

/** `?a=1&b=x` from the defined, non-empty values of `params`. */
export function query(params: Record<string, string | number | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

/** `ws://host/path` (or wss) for a same-origin WebSocket path. */
export function wsUrl(path: string): string {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  return `${proto}//${location.host}${path}`;
}

// ---- Shapes the pages use (see docs/api.md and docs/agents.md) ----

export type ExecStatus = "pending" | "running" | "succeeded" | "failed" | "cancelled" | "interrupted";
export type TaskStatus = "draft" | "pending" | "running" | "succeeded" | "failed" | "cancelled";

export interface Task {
  id: number;
  title: string;
  description: string;
  priority: number;
  status: TaskStatus;
  tags: string[];
  project_path: string | null;
  agent_id: number | null;
  meta: Record<string, unknown>;
  created_at: string;
  updated_at: string;
  started_at: string | null;
  completed_at: string | null;
  executions_total: number;
  executions_active: number;
}

export interface Execution {
  id: number;
  task_id: number | null;
  type: "terminal" | "agent_session" | "agent_run";
  status: ExecStatus;
  [key: string]: unknown;
}

export interface Me {
  [key: string]: unknown;
}
