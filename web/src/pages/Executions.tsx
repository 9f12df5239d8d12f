// Every execution (terminals, agent sessions, agent runs), newest first, with filters: type,
// status, agent, task, a date range and text (task title or prompt, command, result). Filters and
// the page live in the URL, so a reload or a shared link shows the same list. Live.

import { useEffect, useState } from "preact/hooks";
import { api, query, type Agent, type Execution, type List } from "../api";
import { ExecutionsTable, TYPE_LABEL } from "../components/ExecutionsTable";
import { isExecutionChange, useRefetchOn } from "../components/live";
import { FilterSearch } from "../components/FilterSearch";
import { Pager } from "../components/Pager";
import { navigate, useLocation } from "../router";
import { ErrorBanner, useLoad, val } from "../ui";

const PAGE_SIZE = 25;
const STATUSES = ["pending", "running", "succeeded", "failed", "cancelled", "interrupted"];
const FIELDS = ["type", "status", "agent_id", "task_id", "from", "to", "q"] as const;
type Filters = Record<(typeof FIELDS)[number], string> & { offset: number };

function readFilters(search: URLSearchParams): Filters {
  const f = { offset: 0 } as Filters;
  for (const k of FIELDS) f[k] = search.get(k) ?? "";
  const offset = Number(search.get("offset") ?? 0);
  f.offset = Number.isInteger(offset) && offset > 0 ? offset : 0;
  return f;
}

function writeFilters(f: Filters) {
  navigate(`/executions${query({ ...f, offset: f.offset || undefined })}`, true);
}

/** A `yyyy-mm-dd` from a date input as the instant its day starts here (`plusDays` later). */
function dayStart(day: string, plusDays = 0): string | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day);
  if (!m) return undefined;
  return new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]) + plusDays).toISOString();
}

export function Executions() {
  const { search } = useLocation();
  const f = readFilters(search);
  const key = search.toString();
  const list = useLoad(
    () =>
      api.get<List<Execution>>(
        `/api/executions${query({
          type: f.type,
          status: f.status,
          agent_id: f.agent_id,
          task_id: f.task_id,
          // "to" is inclusive: everything before the next day starts.
          since: dayStart(f.from),
          until: dayStart(f.to, 1),
          q: f.q,
          limit: PAGE_SIZE,
          offset: f.offset || undefined,
        })}`,
      ),
    [key],
  );
  useRefetchOn(isExecutionChange, list.reload);
  const agents = useLoad(() => api.get<List<Agent>>("/api/agents?limit=500"), []);
  const agentList = agents.data?.items ?? [];
  const apply = (change: Partial<Filters>) => writeFilters({ ...f, ...change, offset: change.offset ?? 0 });

  // Typed text (search, task id) is applied on submit, not per keystroke.
  const [text, setText] = useState({ q: f.q, task_id: f.task_id });
  useEffect(() => setText({ q: f.q, task_id: f.task_id }), [f.q, f.task_id]);

  const d = list.data;
  const filtered = FIELDS.some((k) => f[k]);
  return (
    <div>
      <div class="row page-head">
        <h1>Executions</h1>
        {d ? <span class="muted">{d.total.toLocaleString()} in all{filtered ? " matching" : ""}</span> : null}
      </div>
      <form
        class="card filters"
        aria-label="filter executions"
        onSubmit={(e) => {
          e.preventDefault();
          apply({ q: text.q.trim(), task_id: text.task_id.trim().replace(/^#/, "") });
        }}
      >
        <label>
          <span class="label">Type</span>
          <select name="type" value={f.type} onChange={(e) => apply({ type: val(e) })}>
            <option value="">any</option>
            {Object.entries(TYPE_LABEL).map(([v, label]) => (
              <option value={v}>{label}</option>
            ))}
          </select>
        </label>
        <label>
          <span class="label">Status</span>
          <select name="status" value={f.status} onChange={(e) => apply({ status: val(e) })}>
            <option value="">any</option>
            {STATUSES.map((s) => (
              <option value={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          <span class="label">Agent</span>
          <select name="agent_id" value={f.agent_id} onChange={(e) => apply({ agent_id: val(e) })}>
            <option value="">any</option>
            {agentList.map((a) => (
              <option value={String(a.id)}>{a.name}</option>
            ))}
            {f.agent_id && !agentList.some((a) => String(a.id) === f.agent_id) ? (
              <option value={f.agent_id}>agent {f.agent_id}</option>
            ) : null}
          </select>
        </label>
        <label>
          <span class="label">From</span>
          <input name="from" type="date" value={f.from} onChange={(e) => apply({ from: val(e) })} />
        </label>
        <label>
          <span class="label">To</span>
          <input name="to" type="date" value={f.to} onChange={(e) => apply({ to: val(e) })} />
        </label>
        <label class="narrow">
          <span class="label">Task #</span>
          <input
            name="task_id"
            inputMode="numeric"
            value={text.task_id}
            onInput={(e) => setText({ ...text, task_id: val(e) })}
          />
        </label>
        <FilterSearch
          value={text.q}
          placeholder="task title, prompt, command, result"
          onInput={(v) => setText({ ...text, q: v })}
          onClear={() => writeFilters(readFilters(new URLSearchParams()))}
        />
      </form>
      <ErrorBanner error={list.error} />
      <ErrorBanner error={agents.error} />
      {!d ? (
        list.loading ? <p class="muted">Loading…</p> : null
      ) : (
        <div class="card">
          <ExecutionsTable
            items={d.items}
            empty={d.total ? "Nothing on this page." : filtered ? "No execution matches." : "Nothing has run yet."}
            showTask
          />
          <Pager total={d.total} offset={f.offset} pageSize={PAGE_SIZE} onPage={(offset) => apply({ offset })} />
        </div>
      )}
    </div>
  );
}
