// Agents: the list (`/agents`) and one agent (`/agents/:id`) with its definition, its live
// session (open / stop) and the edit form. A session opens in the terminal view
// (`/agent-sessions/:id`, pages/Terminals.tsx).

import { useState } from "preact/hooks";
import { api, type Agent, type List, type SessionInfo } from "../api";
import { AgentForm } from "../components/AgentForm";
import { isAgentChange, isExecutionChange, useDeleted, useRefetchOn } from "../components/live";
import { joinArgv } from "../components/text";
import { navigate } from "../router";
import { Ago, Badge, ConfirmButton, ErrorBanner, fmtSecs, Gone, Link, useLoad } from "../ui";

export function Agents(props: { id?: string }) {
  return props.id ? <AgentDetail id={props.id} /> : <AgentList />;
}

/** "never", or "on-failure · 5 in 10m · backoff 1s–60s". */
function restartSummary(a: Agent): string {
  const r = a.restart;
  if (r.policy === "never") return "never";
  return `on-failure · ${r.max_restarts} in ${fmtSecs(r.window_secs)} · backoff ${fmtSecs(r.backoff_initial_ms / 1000)}–${fmtSecs(r.backoff_max_ms / 1000)}`;
}

const idleSummary = (secs: number) => (secs === 0 ? "never" : fmtSecs(secs));

/** The live agent sessions, by agent id (at most one per agent). */
function useAgentSessions() {
  const s = useLoad(() => api.get<List<SessionInfo>>("/api/agent-sessions"), []);
  useRefetchOn(isExecutionChange, s.reload);
  const byAgent = new Map<number, SessionInfo>();
  for (const x of s.data?.items ?? []) if (x.agent_id !== undefined && x.status === "running") byAgent.set(x.agent_id, x);
  return { byAgent, error: s.error, reload: s.reload };
}

/** Opens (or joins) the agent's session and goes to its terminal view. */
function useOpenSession() {
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const open = async (agentId: number) => {
    setError(null);
    setBusy(true);
    try {
      const s = await api.post<SessionInfo>(`/api/agents/${agentId}/session`);
      navigate(`/agent-sessions/${encodeURIComponent(s.id)}`);
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };
  return { open, error, busy, clear: () => setError(null) };
}

function AgentList() {
  const agents = useLoad(() => api.get<List<Agent>>("/api/agents?limit=500"), []);
  useRefetchOn(isAgentChange, agents.reload);
  const sessions = useAgentSessions();
  const opener = useOpenSession();
  const [creating, setCreating] = useState(false);
  const items = agents.data?.items ?? [];
  return (
    <div>
      <div class="row page-head">
        <h1>Agents</h1>
        <span class="spacer" />
        {!creating ? (
          <button class="primary" onClick={() => setCreating(true)}>
            New agent
          </button>
        ) : null}
      </div>
      {creating ? <AgentForm onSaved={(a) => navigate(`/agents/${a.id}`)} onCancel={() => setCreating(false)} /> : null}
      <ErrorBanner error={agents.error ?? sessions.error} />
      <ErrorBanner error={opener.error} onClose={opener.clear} />
      {!agents.data ? (
        agents.loading ? <p class="muted">Loading…</p> : null
      ) : !items.length ? (
        <p class="muted card">No agents yet. Create one to run tasks or open an agent session.</p>
      ) : (
        <div class="card table-wrap">
          <table class="agents">
            <thead>
              <tr>
                <th>name</th>
                <th class="wide">command</th>
                <th class="wide">model</th>
                <th class="wide">restart</th>
                <th class="wide">idle stop</th>
                <th>session</th>
              </tr>
            </thead>
            <tbody>
              {items.map((a) => {
                const live = sessions.byAgent.get(a.id);
                return (
                  <tr key={a.id} data-agent={a.id}>
                    <td>
                      <Link href={`/agents/${a.id}`}>{a.name}</Link>
                      {a.description ? <div class="muted small">{a.description}</div> : null}
                    </td>
                    <td class="wide mono">{joinArgv(a.command)}</td>
                    <td class="wide">{a.model ?? "—"}</td>
                    <td class="wide">{restartSummary(a)}</td>
                    <td class="wide">{idleSummary(a.idle_timeout_secs)}</td>
                    <td>
                      {live ? (
                        <>
                          <Link href={`/agent-sessions/${encodeURIComponent(live.id)}`}>
                            <Badge status="live" />
                          </Link>
                          {/* What it works on, as the agent titles its terminal. */}
                          {live.title ? <div class="muted small session-title">{live.title}</div> : null}
                        </>
                      ) : (
                        <button disabled={opener.busy} onClick={() => opener.open(a.id)}>
                          Open session
                        </button>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}

function AgentDetail(props: { id: string }) {
  const agent = useLoad(() => api.get<Agent>(`/api/agents/${encodeURIComponent(props.id)}`), [props.id]);
  const gone = useDeleted("agent.deleted", props.id);
  useRefetchOn((e) => e.type === "agent.updated" && String(e.data?.id) === props.id, agent.reload);
  const sessions = useAgentSessions();
  const opener = useOpenSession();
  const [editing, setEditing] = useState(false);
  const [actionError, setActionError] = useState<unknown>(null);
  const a = agent.data;
  if (gone) return <Gone what="agent" back="/agents" />;
  if (!a) {
    return (
      <div>
        <p>
          <Link href="/agents">← Agents</Link>
        </p>
        <ErrorBanner error={agent.error} />
        {agent.loading ? <p class="muted">Loading…</p> : null}
      </div>
    );
  }
  const live = sessions.byAgent.get(a.id);
  const stop = async () => {
    if (!live) return;
    setActionError(null);
    try {
      await api.del(`/api/agent-sessions/${encodeURIComponent(live.id)}`);
      sessions.reload();
    } catch (e) {
      setActionError(e);
    }
  };
  const remove = async () => {
    setActionError(null);
    try {
      await api.del(`/api/agents/${a.id}`);
      navigate("/agents");
    } catch (e) {
      setActionError(e);
    }
  };
  return (
    <div>
      <p>
        <Link href="/agents">← Agents</Link>
      </p>
      <div class="row page-head">
        <h1>{a.name}</h1>
        {live ? <Badge status="live" /> : null}
        <span class="spacer" />
        {live ? (
          <>
            <button class="primary" onClick={() => navigate(`/agent-sessions/${encodeURIComponent(live.id)}`)}>
              Open session
            </button>
            <ConfirmButton label="Stop session" confirm="Stop the running session?" onConfirm={stop} />
          </>
        ) : (
          <button class="primary" disabled={opener.busy} onClick={() => opener.open(a.id)}>
            Open session
          </button>
        )}
        {!editing ? <button onClick={() => setEditing(true)}>Edit</button> : null}
        <ConfirmButton label="Delete" confirm={`Delete agent ${a.name}?`} onConfirm={remove} />
      </div>
      <ErrorBanner error={opener.error} onClose={opener.clear} />
      <ErrorBanner error={actionError} onClose={() => setActionError(null)} />
      <ErrorBanner error={agent.error} />
      {editing ? (
        <AgentForm
          agent={a}
          onSaved={(saved) => {
            agent.setData(saved);
            setEditing(false);
          }}
          onCancel={() => setEditing(false)}
        />
      ) : (
        <AgentFacts a={a} />
      )}
    </div>
  );
}

function AgentFacts(props: { a: Agent }) {
  const a = props.a;
  const env = Object.entries(a.env);
  return (
    <section class="card">
      {a.description ? <p>{a.description}</p> : null}
      <dl class="facts">
        <dt>command</dt>
        <dd class="mono">{joinArgv([...a.command, ...a.args])}</dd>
        <dt>model</dt>
        <dd>{a.model ?? "(CLI default)"}</dd>
        <dt>project dir</dt>
        <dd class="mono">{a.project_dir ?? "(server user's home)"}</dd>
        <dt>permission mode</dt>
        <dd>{a.permission_mode ?? "(CLI default)"}</dd>
        <dt>allowed tools</dt>
        <dd>{a.allowed_tools.length ? a.allowed_tools.join(", ") : "—"}</dd>
        <dt>idle stop</dt>
        <dd class="idle">{idleSummary(a.idle_timeout_secs)}</dd>
        <dt>restart</dt>
        <dd class="restart">{restartSummary(a)}</dd>
        <dt>environment</dt>
        <dd class="mono">{env.length ? env.map(([k, v]) => <div key={k}>{`${k}=${v}`}</div>) : "—"}</dd>
        <dt>conversation</dt>
        <dd class="mono">{a.conversation_id ?? "none yet"}</dd>
        <dt>created</dt>
        <dd>
              <Ago at={a.created_at} />
            </dd>
        <dt>updated</dt>
        <dd>
              <Ago at={a.updated_at} />
            </dd>
      </dl>
      {a.system_prompt ? (
        <details>
          <summary>System prompt</summary>
          <pre>{a.system_prompt}</pre>
        </details>
      ) : null}
    </section>
  );
}
