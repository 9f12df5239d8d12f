// REST for terminal and agent sessions (docs/terminals.md, docs/agents.md): both kinds share the
// session shape (`SessionInfo` in ../api) and the WebSocket protocol; only the path differs.

import { api, type List, type SessionInfo } from "../api";

export type SessionKind = "terminal" | "agent_session";

export interface NewTerminal {
  command?: string[];
  cwd?: string;
  name?: string;
  /** Caps (docs/operations.md): refused with 422 where this server cannot enforce them. */
  memory_max_bytes?: number;
  pids_max?: number;
}

const base = (kind: SessionKind) => (kind === "agent_session" ? "/api/agent-sessions" : "/api/terminals");

export const sessionPath = (kind: SessionKind, id: string) => `${base(kind)}/${encodeURIComponent(id)}`;
export const sessionWsPath = (kind: SessionKind, id: string) => `${sessionPath(kind, id)}/ws`;
/** The page that shows a session (a deep link). */
export const sessionPage = (kind: SessionKind, id: string) =>
  `${kind === "agent_session" ? "/agent-sessions" : "/terminals"}/${encodeURIComponent(id)}`;

export const listTerminals = () => api.get<List<SessionInfo>>("/api/terminals");
export const getSession = (kind: SessionKind, id: string) => api.get<SessionInfo>(sessionPath(kind, id));
export const createTerminal = (body: NewTerminal) => api.post<SessionInfo>("/api/terminals", body);
/** Stops a live session (202; its end comes as `session.exited`) or forgets an exited one (200). */
export const stopSession = (kind: SessionKind, id: string) => api.del<unknown>(sessionPath(kind, id));

const SIGNALS: Record<number, string> = { 1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 6: "SIGABRT", 9: "SIGKILL", 15: "SIGTERM" };

/** "exit 0", "signal 9 (SIGKILL)", or "" while running. */
export function exitText(code: number | null | undefined, signal: number | null | undefined): string {
  if (signal != null) return `signal ${signal}${SIGNALS[signal] ? ` (${SIGNALS[signal]})` : ""}`;
  if (code != null) return `exit ${code}`;
  return "";
}

/** `/home/me/proj` → `~/proj` (and `/root/x` → `~/x`): home directories are where most work is. */
export function shortPath(p: string): string {
  const m = /^(\/root|\/home\/[^/]+)(\/.*)?$/.exec(p);
  return m ? `~${m[2] ?? ""}` : p;
}

/**
 * A short label for a tab: the name the user gave, else the title the program set (a shell's
 * `user@host: dir`, Claude Code's task), else the program and where it runs (`bash · ~/proj`).
 * The server names an unnamed session after its whole command line, which says less than that.
 */
export function sessionLabel(s: Pick<SessionInfo, "id" | "name" | "argv" | "cwd"> & { title?: string | null }): string {
  if (s.name && s.name !== s.argv.join(" ")) return s.name;
  if (s.title) return s.title;
  const program = s.argv.length ? (s.argv[0].split("/").pop() ?? s.argv[0]) : "";
  const words = [program, ...s.argv.slice(1)].join(" ") || s.id;
  return s.cwd ? `${words} · ${shortPath(s.cwd)}` : words;
}

/** The title the program set, when the label is something else (a name the user gave), to show
 *  beside it; else null. */
export function sessionSubtitle(s: Parameters<typeof sessionLabel>[0]): string | null {
  return s.title && s.title !== sessionLabel(s) ? s.title : null;
}
