// Agents that ask (docs/approvals.md): the attention badge, the approval card (allow / deny with
// a message), the dashboard's "Needs you" card and the count in the tab title. Everything here
// refetches on `attention.changed`, `approval.requested` and `approval.decided`.

import { useEffect, useState } from "preact/hooks";
import { api, ApiError, type Approval, type Attention, type List, type SessionInfo } from "../api";
import { useEvents, type ServerEvent } from "../events";
import { Ago, ErrorBanner, Link, useLoad } from "../ui";
import { isExecutionChange, useRefetchOn } from "./live";
import { setNeedsYouCount } from "../title";

export const isAttentionChange = (e: ServerEvent) =>
  e.type === "attention.changed" || e.type === "approval.requested" || e.type === "approval.decided";

const LABEL: Record<Attention, string> = {
  input: "needs input",
  approval: "needs approval",
  done: "done",
};

export function AttentionBadge(props: { value?: Attention | null }) {
  if (!props.value) return null;
  return (
    <span class={`badge attention at-${props.value}`} data-attention={props.value}>
      {LABEL[props.value]}
    </span>
  );
}

/** The lines of a diff from an edit's old and new text. */
function diffLines(oldText: string, newText: string): { sign: string; text: string }[] {
  const out: { sign: string; text: string }[] = [];
  if (oldText) oldText.split("\n").forEach((t) => out.push({ sign: "-", text: t }));
  if (newText) newText.split("\n").forEach((t) => out.push({ sign: "+", text: t }));
  return out;
}

/** What the agent wants to do, shown the way it reads best: a command, a file and its diff. */
function ToolInput(props: { tool: string; input: any }) {
  const i = props.input ?? {};
  if (props.tool === "Bash" && typeof i.command === "string") {
    return (
      <>
        <pre class="approval-command">{i.command}</pre>
        {i.description ? <p class="muted">{i.description}</p> : null}
      </>
    );
  }
  const path = i.file_path ?? i.notebook_path;
  if (typeof path === "string") {
    const edits: { old_string?: string; new_string?: string }[] = Array.isArray(i.edits)
      ? i.edits
      : i.old_string !== undefined || i.new_string !== undefined
        ? [i]
        : typeof i.content === "string"
          ? [{ old_string: "", new_string: i.content }]
          : [];
    return (
      <>
        <div class="mono approval-path">{path}</div>
        {edits.length ? (
          <pre class="approval-diff">
            {edits.flatMap((e) =>
              diffLines(e.old_string ?? "", e.new_string ?? "").map((l) => (
                <div class={l.sign === "+" ? "add" : "del"}>
                  {l.sign} {l.text}
                </div>
              )),
            )}
          </pre>
        ) : null}
      </>
    );
  }
  return <pre class="approval-json">{JSON.stringify(i, null, 2)}</pre>;
}

function askerLink(a: Approval) {
  if (a.session_id) return <Link href={`/agent-sessions/${a.session_id}`}>agent session</Link>;
  if (a.execution_id) return <Link href={`/executions/${a.execution_id}`}>run #{a.execution_id}</Link>;
  return <span>an agent</span>;
}

export function ApprovalCard(props: { a: Approval; onDecided?: () => void }) {
  const a = props.a;
  const [message, setMessage] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const decide = async (decision: "allow" | "deny") => {
    setBusy(true);
    setError(null);
    try {
      await api.post(`/api/approvals/${a.id}`, { decision, message: message.trim() || undefined });
      props.onDecided?.();
    } catch (e) {
      setError(e);
      if (e instanceof ApiError && e.status === 409) props.onDecided?.();
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="approval card" data-approval={a.id}>
      <div class="approval-head">
        <strong class="approval-tool">{a.tool_name}</strong> asked by {askerLink(a)} <Ago at={a.created_at} />
      </div>
      <ToolInput tool={a.tool_name} input={a.tool_input} />
      <ErrorBanner error={error} />
      <div class="approval-actions">
        <input
          class="approval-message"
          placeholder="message to the agent (optional)"
          value={message}
          maxLength={2000}
          onInput={(e) => setMessage((e.target as HTMLInputElement).value)}
        />
        <button class="primary" disabled={busy} onClick={() => decide("allow")}>
          Allow
        </button>
        <button class="danger" disabled={busy} onClick={() => decide("deny")}>
          Deny
        </button>
      </div>
    </div>
  );
}

/** Pending approvals and agent sessions waiting for their user, kept current by events. */
export function useNeedsYou() {
  const d = useLoad(
    () =>
      Promise.all([
        api.get<List<Approval>>("/api/approvals?status=pending&limit=100"),
        api.get<List<SessionInfo>>("/api/agent-sessions"),
      ]),
    [],
  );
  useRefetchOn((e) => isAttentionChange(e) || isExecutionChange(e), d.reload);
  const [approvals, sessions] = d.data ?? [undefined, undefined];
  const waiting = (sessions?.items ?? []).filter(
    (s) => (s.status === "running" || s.status === "stopping") && s.attention,
  );
  const blocked = new Set<number>();
  waiting.filter((s) => s.attention !== "done").forEach((s) => blocked.add(s.execution_id));
  (approvals?.items ?? []).forEach((a) => blocked.add(a.execution_id ?? -a.id));
  return { load: d, approvals: approvals?.items ?? [], sessions: waiting, count: blocked.size };
}

/** "(2) claude-manager": how many sessions and runs wait for input or an approval. */
export function useTitleCount(enabled: boolean) {
  const [count, setCount] = useState(0);
  const refresh = async () => {
    if (!enabled) return;
    try {
      const [approvals, sessions] = await Promise.all([
        api.get<List<Approval>>("/api/approvals?status=pending&limit=100"),
        api.get<List<SessionInfo>>("/api/agent-sessions"),
      ]);
      const ids = new Set<number>();
      sessions.items
        .filter((s) => s.status === "running" && (s.attention === "input" || s.attention === "approval"))
        .forEach((s) => ids.add(s.execution_id));
      approvals.items.forEach((a) => ids.add(a.execution_id ?? -a.id));
      setCount(ids.size);
    } catch {
      /* the pages show errors; the title keeps its last count */
    }
  };
  useEffect(() => {
    refresh();
  }, [enabled]);
  useEvents((e) => {
    if (e.type === "connected" || isAttentionChange(e) || e.type === "session.exited") refresh();
  });
  useEffect(() => {
    setNeedsYouCount(count);
  }, [count]);
}

export function NeedsYouCard() {
  const n = useNeedsYou();
  if (!n.load.data && !n.load.error) return null;
  const empty = !n.approvals.length && !n.sessions.length;
  return (
    <section class="card needs-you">
      <h2>Needs you{n.count ? ` (${n.count})` : ""}</h2>
      <ErrorBanner error={n.load.error} />
      {empty ? <p class="muted">Nothing waits for you.</p> : null}
      {n.approvals.map((a) => (
        <ApprovalCard key={a.id} a={a} onDecided={n.load.reload} />
      ))}
      {n.sessions.length ? (
        <ul class="needs-sessions">
          {n.sessions.map((s) => (
            <li>
              <Link href={`/agent-sessions/${s.id}`}>{s.name || s.id.slice(0, 8)}</Link>{" "}
              <AttentionBadge value={s.attention} />
            </li>
          ))}
        </ul>
      ) : null}
    </section>
  );
}

/** The pending approvals of one agent session or run, shown where you look at it. */
export function PendingApprovals(props: { sessionId?: string; executionId?: number }) {
  const d = useLoad(() => api.get<List<Approval>>("/api/approvals?status=pending&limit=100"), []);
  useRefetchOn(isAttentionChange, d.reload);
  const mine = (d.data?.items ?? []).filter(
    (a) =>
      (props.sessionId !== undefined && a.session_id === props.sessionId) ||
      (props.executionId !== undefined && a.execution_id === props.executionId),
  );
  if (!mine.length) return null;
  return (
    <div class="pending-approvals">
      {mine.map((a) => (
        <ApprovalCard key={a.id} a={a} onDecided={d.reload} />
      ))}
    </div>
  );
}
