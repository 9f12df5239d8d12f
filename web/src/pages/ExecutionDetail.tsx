// One execution: what ran, where, how it ended. A terminal or agent session shows its stored
// output tail and a link to the live view while it runs; an agent run shows its outcome (result,
// cost, usage) and its event timeline, replayed then live.

import { api, type Agent, type Execution, type List, type RunEvent, type Usage } from "../api";
import { AttentionBadge, PendingApprovals } from "../components/Attention";
import { WithChanges } from "../components/Changes";
import { ContinueActions, conversationOf } from "../components/ContinueActions";
import { EventTimeline } from "../components/EventTimeline";
import { isExecutionChange, useRefetchOn } from "../components/live";
import { useRunEvents, type StreamState } from "../components/runEvents";
import { capKilled, readableReason } from "../components/Caps";
import { joinArgv } from "../components/text";
import { exitText } from "../term/api";
import { Ago, Badge, ConfirmButton, ErrorBanner, fmtCost, fmtDuration, fmtTime, Link, useLoad, useTick, useAction } from "../ui";

const TYPE_LABEL: Record<Execution["type"], string> = {
  terminal: "Terminal",
  agent_session: "Agent session",
  agent_run: "Agent run",
};

const isActive = (x: Execution) => x.status === "pending" || x.status === "running";

export function ExecutionDetail(props: { id: string }) {
  const x = useLoad(() => api.get<Execution>(`/api/executions/${encodeURIComponent(props.id)}`), [props.id]);
  // This page shows bytes and last activity too, so the activity tick counts here.
  useRefetchOn(
    (e) => (isExecutionChange(e) || e.type === "execution.updated") && String(e.data?.id) === props.id,
    x.reload,
  );
  useRefetchOn((e) => e.type === "attention.changed" && String(e.data?.execution_id) === props.id, x.reload);
  const d = x.data;
  if (!d) {
    return (
      <div>
        <ErrorBanner error={x.error} />
        {x.loading ? <p class="muted">Loading…</p> : null}
      </div>
    );
  }
  return (
    <div>
      <Header x={d} onChange={x.setData} />
      <ErrorBanner error={x.error} />
      {d.type === "agent_run" ? (
        <WithChanges x={d} label="Run">
          <RunView x={d} />
        </WithChanges>
      ) : (
        <WithChanges x={d} label="Session">
          <Facts x={d} />
          <OutputView x={d} />
        </WithChanges>
      )}
    </div>
  );
}

function Header(props: { x: Execution; onChange: (x: Execution) => void }) {
  const x = props.x;
  const { busy, error, setError, act } = useAction();
  const cancel = async () => {
    await act(async () => {
      // The reply is the summary (no output): keep the tail we have.
      const row = await api.post<Execution>(`/api/executions/${x.id}/cancel`);
      props.onChange({ ...x, ...row });
    });
  };
  return (
    <>
      <div class="row page-head">
        <h1>
          {TYPE_LABEL[x.type] ?? x.type} #{x.id}
        </h1>
        <Badge status={x.status} /> <AttentionBadge value={x.attention} />
        <span class="spacer" />
        {x.type === "agent_run" && isActive(x) ? (
          <ConfirmButton
            label={x.status === "pending" ? "Remove from queue" : "Cancel run"}
            confirm={x.status === "pending" ? "Remove this run from the queue?" : "Stop this run now?"}
            disabled={busy}
            onConfirm={cancel}
          />
        ) : null}
      </div>
      <ErrorBanner error={error} onClose={() => setError(null)} />
      {isActive(x) ? <PendingApprovals executionId={x.id} /> : null}
    </>
  );
}

/** What ran, where, when and how it ended; how to go on from it. */
function Facts(props: { x: Execution; conversation?: string | null }) {
  const x = props.x;
  const names = useNames(x);
  useTick(x.status === "running");
  // A run names its conversation in its events; an agent session's is its agent's.
  const conversation = x.type === "agent_run" ? (props.conversation ?? null) : names.conversation ?? null;
  return (
    <section class="card">
      <dl class="facts">
        <dt>task</dt>
        <dd>
          {x.task_id ? <Link href={`/tasks/${x.task_id}`}>{x.task_title ?? `task ${x.task_id}`}</Link> : "—"}
        </dd>
        {x.agent_id ? (
          <>
            <dt>agent</dt>
            <dd>
              <Link href={`/agents/${x.agent_id}`}>{names.agent ?? `agent ${x.agent_id}`}</Link>
            </dd>
          </>
        ) : null}
        {conversation ? (
          <>
            <dt>conversation</dt>
            <dd class="mono conversation">{conversation}</dd>
          </>
        ) : null}
        <dt>created</dt>
        <dd>
          <Ago at={x.created_at} /> <span class="muted small">({fmtTime(x.created_at)})</span>
        </dd>
        <dt>started</dt>
        <dd>{fmtTime(x.started_at)}</dd>
        <dt>finished</dt>
        <dd>{fmtTime(x.finished_at)}</dd>
        <dt>duration</dt>
        <dd class="duration">{x.started_at ? fmtDuration(x.started_at, x.finished_at) : "—"}</dd>
        <dt>exit</dt>
        <dd>{exitText(x.exit_code, x.exit_signal) || "—"}</dd>
        {x.reason ? (
          <>
            <dt>reason</dt>
            <dd class="reason">
              {capKilled(x.reason) ? <span class="badge st-failed cap-killed">memory cap</span> : null}
              {readableReason(x.reason)}
            </dd>
          </>
        ) : null}
        <dt>cwd</dt>
        <dd class="mono">{x.cwd ?? "—"}</dd>
        <dt>command</dt>
        <dd class="mono">{x.command.length ? joinArgv(x.command) : "—"}</dd>
      </dl>
      <ContinueActions x={x} conversation={conversation} />
    </section>
  );
}

/**
 * The agent's name, for the link (the task's title comes with the execution). The agent comes
 * from the list: an execution may outlive its agent, and a 404 here would only be noise.
 */
function useNames(x: Execution): { agent?: string; conversation?: string | null } {
  const agents = useLoad(
    () => (x.agent_id ? api.get<List<Agent>>("/api/agents?limit=500") : Promise.resolve(undefined)),
    [x.agent_id],
  );
  const agent = agents.data?.items.find((a) => a.id === x.agent_id);
  return { agent: agent?.name, conversation: agent?.conversation_id };
}

/** A terminal or agent session: the live view while it runs, the stored tail always. */
function OutputView(props: { x: Execution }) {
  const x = props.x;
  const base = x.type === "terminal" ? "/terminals" : "/agent-sessions";
  return (
    <section class="card">
      <div class="row">
        <h2>Output</h2>
        <span class="spacer" />
        {isActive(x) && x.session_id ? (
          <Link href={`${base}/${encodeURIComponent(x.session_id)}`} class="button">
            Open the live session
          </Link>
        ) : null}
      </div>
      {x.output_truncated ? (
        <p class="muted small">Truncated: only the last 64 KiB of {x.bytes_out.toLocaleString()} bytes are kept.</p>
      ) : null}
      {x.output_tail ? (
        <pre class="output">{x.output_tail}</pre>
      ) : (
        <p class="muted">{isActive(x) ? "The output is stored when the session ends." : "No output."}</p>
      )}
    </section>
  );
}

/** An agent run: the outcome first once known, then the facts, stderr when it failed, the timeline. */
function RunView(props: { x: Execution }) {
  const x = props.x;
  const { events, state } = useRunEvents(String(x.id));
  // The result event carries turns and the agent's own duration, which the row does not.
  const result = [...events].reverse().find((e) => e.kind === "result");
  return (
    <>
      {x.result !== null || x.cost_usd !== null || result ? <Outcome x={x} result={result} /> : null}
      <Facts x={x} conversation={conversationOf(events)} />
      {x.output_tail ? (
        <section class="card">
          <h2>stderr</h2>
          {x.output_truncated ? <p class="muted small">Truncated: the last part only.</p> : null}
          <pre class="output">{x.output_tail}</pre>
        </section>
      ) : null}
      <section class="card">
        <div class="row">
          <h2>Events</h2>
          <span class="spacer" />
          <StreamBadge state={state} />
        </div>
        {events.length ? (
          <EventTimeline events={events} />
        ) : (
          <p class="muted">{state === "ended" ? "This run recorded no events." : "Waiting for the agent…"}</p>
        )}
      </section>
    </>
  );
}

function StreamBadge(props: { state: StreamState }) {
  const label: Record<StreamState, string> = {
    connecting: "connecting",
    live: "live",
    ended: "complete",
    reconnecting: "reconnecting",
    not_a_run: "no events",
  };
  return <span class={`stream stream-${props.state} muted small`}>{label[props.state]}</span>;
}

function Outcome(props: { x: Execution; result?: RunEvent }) {
  const x = props.x;
  const r = props.result?.data;
  const usage: Usage | null = x.usage ?? ((r?.usage as Usage | undefined) ?? null);
  const cost = x.cost_usd ?? (typeof r?.total_cost_usd === "number" ? r.total_cost_usd : null);
  const text = x.result ?? (typeof r?.result === "string" ? r.result : null);
  return (
    <section class={x.status === "failed" ? "card outcome bad" : "card outcome"}>
      <h2>Result</h2>
      {text !== null ? <pre class="result-text">{text}</pre> : <p class="muted">No result text.</p>}
      <dl class="facts">
        <dt>cost</dt>
        <dd class="cost">{fmtCost(cost)}</dd>
        {usage ? (
          <>
            <dt>tokens</dt>
            <dd class="usage">
              {usage.input_tokens ?? 0} in · {usage.output_tokens ?? 0} out
              {usage.cache_read_input_tokens ? ` · ${usage.cache_read_input_tokens} cache read` : ""}
              {usage.cache_creation_input_tokens ? ` · ${usage.cache_creation_input_tokens} cache write` : ""}
            </dd>
          </>
        ) : null}
        {typeof r?.num_turns === "number" ? (
          <>
            <dt>turns</dt>
            <dd>{r.num_turns}</dd>
          </>
        ) : null}
        {typeof r?.duration_ms === "number" ? (
          <>
            <dt>agent time</dt>
            <dd>{(r.duration_ms / 1000).toFixed(1)} s</dd>
          </>
        ) : null}
      </dl>
    </section>
  );
}
