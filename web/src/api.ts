// The one door to the server's JSON API: every call goes through `request`, so every error the
// server sends is turned into an `ApiError` carrying its code and message for the page to show.

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public field?: string,
    public requestId?: string,
    /** The parsed reply, for the few failures that carry data (a 503 detailed health). */
    public body?: unknown,
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
      json,
    );
  }
  return json as T;
}

export const api = {
  get: <T>(path: string) => request<T>("GET", path),
  post: <T>(path: string, body?: unknown) => request<T>("POST", path, body ?? {}),
  patch: <T>(path: string, body: unknown) => request<T>("PATCH", path, body),
  del: <T = void>(path: string, body?: unknown) => request<T>("DELETE", path, body),
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

export type ExecType = "terminal" | "agent_session" | "agent_run";

/** Token counts of a run, as the agent's `result` event reported them. */
export interface Usage {
  input_tokens?: number;
  output_tokens?: number;
  cache_read_input_tokens?: number;
  cache_creation_input_tokens?: number;
  [key: string]: unknown;
}

/** A row of `/api/executions` (src/db/executions.rs); the single GET adds the output tail. */
export interface Execution {
  id: number;
  /** Agent sessions and runs: whether the agent needs you (docs/approvals.md). */
  attention?: Attention | null;
  /** An isolated run with a git worktree (its diff can be reviewed). */
  isolated?: boolean;
  task_id: number | null;
  agent_id: number | null;
  type: ExecType;
  status: ExecStatus;
  /** Why it ended the way it did (e.g. "timed out …"), when the server knows. */
  reason: string | null;
  session_id: string | null;
  pid: number | null;
  cwd: string | null;
  command: string[];
  exit_code: number | null;
  exit_signal: number | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  last_activity_at: string | null;
  bytes_out: number;
  result: string | null;
  cost_usd: number | null;
  usage: Usage | null;
  meta: Record<string, unknown>;
  /** The title of its task, when it has one. */
  task_title?: string | null;
  output_tail?: string;
  output_truncated?: boolean;
  [key: string]: unknown;
}

/** One parsed event of a headless run (`/api/executions/{id}/events`). */
export interface RunEvent {
  execution_id: number;
  seq: number;
  ts: string;
  /** The line's own `type`: system, assistant, user, result; or raw / other. */
  kind: string;
  data: Record<string, unknown>;
}

export interface RestartPolicy {
  policy: "never" | "on-failure";
  backoff_initial_ms: number;
  backoff_max_ms: number;
  max_restarts: number;
  window_secs: number;
}

/** An agent definition as the API shows it (secret-looking env values read `[redacted]`). */
/** An agent CLI by kind (`GET /api/agent-kinds`, src/agent_cli/kinds.rs). */
export type AgentKindName = "claude" | "codex" | "gemini" | "aider" | "opencode" | "command";

export interface AgentKindInfo {
  kind: AgentKindName;
  label: string;
  default_command: string[];
  supports: {
    model: boolean;
    system_prompt: boolean;
    permission_modes: string[];
    allowed_tools: boolean;
    session_resume: boolean;
    run_resume: boolean;
    headless_output: string;
  };
  session_args: { first: string[]; resume: string[] };
}

export interface Agent {
  id: number;
  name: string;
  kind: AgentKindName;
  description: string;
  command: string[];
  args: string[];
  model: string | null;
  system_prompt: string | null;
  project_dir: string | null;
  env: Record<string, string>;
  permission_mode: string | null;
  allowed_tools: string[];
  idle_timeout_secs: number;
  restart: RestartPolicy;
  session_args: { first: string[]; resume: string[] };
  /** Caps for each of its sessions (docs/operations.md); null: none. */
  memory_max_bytes?: number | null;
  pids_max?: number | null;
  conversation_id: string | null;
  created_at: string;
  updated_at: string;
}

/** The value the server shows for a secret env var; sent back, it keeps the stored one. */
export const REDACTED = "[redacted]";

/** A live terminal or agent session (src/actors/session_types.rs). */
export interface SessionInfo {
  id: string;
  kind: string;
  name: string;
  argv: string[];
  cwd: string;
  pid: number;
  status: string;
  created_at: string;
  execution_id: number;
  viewers: number;
  bytes_out: number;
  last_activity_at: string;
  exit_code: number | null;
  exit_signal: number | null;
  finished_at: string | null;
  /** The window title the program last set (OSC 0 or 2), or null (docs/terminals.md). */
  title?: string | null;
  agent_id?: number;
  conversation_id?: string;
  /** Agent sessions: whether the agent needs you (docs/approvals.md). */
  attention?: Attention | null;
}

/** Whether an agent session or run needs its user (docs/approvals.md). */
export type Attention = "input" | "approval" | "done";

/** A permission request of an agent (`/api/approvals`, src/db/approvals.rs). */
export interface Approval {
  id: number;
  execution_id: number | null;
  session_id: string | null;
  agent_id: number | null;
  source: "hook" | "mcp";
  tool_name: string;
  tool_input: any;
  status: "pending" | "allowed" | "denied" | "cancelled";
  message: string | null;
  decided_by: string | null;
  created_at: string;
  deadline: string;
  decided_at: string | null;
}

/** `GET /api/system/health/detailed`. */
export interface HealthDetailed {
  status: string;
  failing: string[];
  version: string;
  uptime_s: number;
  boot_id: string;
  db: {
    ok: boolean;
    latency_ms: number;
    error?: string;
    pool: { size: number; idle: number; in_use: number; checkout_timeouts_total: number };
  };
  websockets: { events: number; terminals: number; agents: number; run_events: number };
  sessions: { terminals: number; agents: number };
  logs: { dropped_total: number };
}

export interface Me {
  [key: string]: unknown;
}
