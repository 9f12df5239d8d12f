// The first page: is the server healthy, what is live right now (sessions, runs), what ran
// lately. Every card refetches on the live events that change it.

import { useEffect } from "preact/hooks";
import { api, ApiError, query, type Execution, type HealthDetailed, type List, type SessionInfo } from "../api";
import { ExecutionsTable } from "../components/ExecutionsTable";
import { NeedsYouCard } from "../components/Attention";
import { isExecutionChange, useRefetchOn } from "../components/live";
import { sessionLabel, sessionSubtitle } from "../term/api";
import { Ago, Badge, ErrorBanner, fmtSecs, Link, plural, useLoad } from "../ui";

/** Uptime and DB latency move without events: re-read health this often. */
const HEALTH_POLL_MS = 15_000;

/** `healthOnly`: a monitor token may read health and nothing else. */
export function Dashboard(props: { healthOnly?: boolean }) {
  if (props.healthOnly) {
    return (
      <div>
        <h1>Dashboard</h1>
        <HealthCard />
      </div>
    );
  }
  return (
    <div>
      <h1>Dashboard</h1>
      <NeedsYouCard />
      <div class="grid">
        <HealthCard />
        <SessionsCard />
      </div>
      <RunsCard />
      <RecentCard />
    </div>
  );
}

function HealthCard() {
  // An unhealthy server answers 503 with the same report (which part fails): show it.
  const h = useLoad(
    () =>
      api.get<HealthDetailed>("/api/system/health/detailed").catch((e) => {
        const body = e instanceof ApiError ? (e.body as HealthDetailed | undefined) : undefined;
        if (e instanceof ApiError && e.status === 503 && body?.status) return body;
        throw e;
      }),
    [],
  );
  useRefetchOn(isExecutionChange, h.reload);
  useEffect(() => {
    const t = window.setInterval(h.reload, HEALTH_POLL_MS);
    return () => window.clearInterval(t);
  }, []);
  const d = h.data;
  return (
    <section class="card health">
      <h2>
        Health {d ? <Badge status={h.error ? "unhealthy" : d.status} /> : null}
      </h2>
      <ErrorBanner error={h.error} />
      {!d ? (
        h.loading ? <p class="muted">Loading…</p> : null
      ) : (
        <dl class="facts">
          {d.failing.length ? (
            <>
              <dt>failing</dt>
              <dd class="bad">{d.failing.join(", ")}</dd>
            </>
          ) : null}
          <dt>version</dt>
          <dd>{d.version}</dd>
          <dt>uptime</dt>
          <dd>{fmtSecs(d.uptime_s)}</dd>
          <dt>database</dt>
          <dd>
            {d.db.ok ? "ok" : <span class="bad">{d.db.error ?? "failing"}</span>} · {d.db.latency_ms.toFixed(1)} ms
          </dd>
          <dt>DB pool</dt>
          <dd>
            {d.db.pool.in_use} in use, {d.db.pool.idle} idle of {d.db.pool.size}
            {d.db.pool.checkout_timeouts_total ? ` · ${d.db.pool.checkout_timeouts_total} checkout timeouts` : ""}
          </dd>
          <dt>websockets</dt>
          <dd>
            {plural(d.websockets.events, "live-events socket")} · {plural(d.websockets.terminals, "terminal viewer")} ·{" "}
            {plural(d.websockets.agents, "agent session viewer")} · {plural(d.websockets.run_events, "run follower")}
          </dd>
          <dt>live sessions</dt>
          <dd>
            {plural(d.sessions.terminals, "terminal")} · {plural(d.sessions.agents, "agent session")}
          </dd>
        </dl>
      )}
    </section>
  );
}

function SessionsCard() {
  const s = useLoad(
    () =>
      Promise.all([
        api.get<List<SessionInfo>>("/api/terminals"),
        api.get<List<SessionInfo>>("/api/agent-sessions"),
      ]),
    [],
  );
  useRefetchOn(isExecutionChange, s.reload);
  const [terms, agents] = s.data ?? [undefined, undefined];
  // Live means running (or stopping): the lists also hold recently ended sessions, which the
  // Terminals page and the executions list show.
  const live = (x: SessionInfo) => x.status === "running" || x.status === "stopping";
  const rows = [
    ...(terms?.items ?? []).filter(live).map((x) => ({ x, href: `/terminals/${x.id}`, kind: "terminal" })),
    ...(agents?.items ?? []).filter(live).map((x) => ({ x, href: `/agent-sessions/${x.id}`, kind: "agent session" })),
  ];
  return (
    <section class="card">
      <h2>Live sessions</h2>
      <ErrorBanner error={s.error} />
      {!s.data ? (
        s.loading ? <p class="muted">Loading…</p> : null
      ) : !rows.length ? (
        <p class="muted">
          No live sessions. Start one from <Link href="/terminals">Terminals</Link> or{" "}
          <Link href="/agents">Agents</Link>.
        </p>
      ) : (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th>name</th>
                <th>kind</th>
                <th>status</th>
                <th class="wide">viewers</th>
                <th class="wide">started</th>
              </tr>
            </thead>
            <tbody>
              {rows.map(({ x, href, kind }) => (
                <tr key={href}>
                  <td>
                    <Link href={href}>{sessionLabel(x)}</Link>
                    {/* A named session (an agent's) with the title its program set: what it does now. */}
                    {sessionSubtitle(x) ? <span class="muted session-title"> · {sessionSubtitle(x)}</span> : null}
                  </td>
                  <td>{kind}</td>
                  <td>
                    <Badge status={x.status} />
                  </td>
                  <td class="wide">{x.viewers}</td>
                  <td class="wide">
                    <Ago at={x.created_at} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function RunsCard() {
  const runs = useLoad(async () => {
    const [running, pending] = await Promise.all([
      api.get<List<Execution>>(`/api/executions${query({ type: "agent_run", status: "running", limit: 50 })}`),
      api.get<List<Execution>>(`/api/executions${query({ type: "agent_run", status: "pending", limit: 50 })}`),
    ]);
    return { running, pending };
  }, []);
  useRefetchOn(isExecutionChange, runs.reload);
  const d = runs.data;
  return (
    <section class="card runs">
      <h2>
        Agent runs in progress
        {d ? (
          <span class="muted small">
            {" "}
            · {d.running.total} running, {d.pending.total} queued ·{" "}
            <Link href="/executions?type=agent_run">all runs</Link>
          </span>
        ) : null}
      </h2>
      <ErrorBanner error={runs.error} />
      {d ? (
        <ExecutionsTable items={[...d.running.items, ...d.pending.items]} empty="No run is running or queued." showTask />
      ) : runs.loading ? (
        <p class="muted">Loading…</p>
      ) : null}
    </section>
  );
}

function RecentCard() {
  const recent = useLoad(() => api.get<List<Execution>>(`/api/executions${query({ limit: 10 })}`), []);
  useRefetchOn(isExecutionChange, recent.reload);
  return (
    <section class="card recent">
      <div class="row">
        <h2>Recent executions</h2>
        <span class="spacer" />
        <Link href="/executions">All executions →</Link>
      </div>
      <ErrorBanner error={recent.error} />
      {recent.data ? (
        <ExecutionsTable items={recent.data.items} empty="Nothing has run yet." showTask />
      ) : recent.loading ? (
        <p class="muted">Loading…</p>
      ) : null}
    </section>
  );
}
