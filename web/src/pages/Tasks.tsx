// The task list: filters and the page live in the URL query (`?status=&tag=&q=&agent_id=&offset=`)
// so a reload, a shared link or Back keeps them. Refetched on every task event.

import { useEffect, useState } from "preact/hooks";
import { api, query, type Agent, type List, type Task, type TaskStatus } from "../api";
import { isTaskChange, useRefetchOn } from "../components/live";
import { FilterSearch } from "../components/FilterSearch";
import { Pager } from "../components/Pager";
import { TaskForm } from "../components/TaskForm";
import { navigate, useLocation } from "../router";
import { Ago, Badge, ErrorBanner, Link, useLoad, val } from "../ui";

export const TASK_STATUSES: TaskStatus[] = ["draft", "pending", "running", "succeeded", "failed", "cancelled"];
/** Rows per page: a screenful on a laptop. */
const PAGE_SIZE = 25;

/** The filters as the URL holds them. */
interface Filters {
  status: string;
  tag: string;
  q: string;
  agent_id: string;
  offset: number;
}

function readFilters(search: URLSearchParams): Filters {
  const offset = Number(search.get("offset") ?? 0);
  return {
    status: search.get("status") ?? "",
    tag: search.get("tag") ?? "",
    q: search.get("q") ?? "",
    agent_id: search.get("agent_id") ?? "",
    offset: Number.isInteger(offset) && offset > 0 ? offset : 0,
  };
}

/** Replaces the URL (no history entry per keystroke) with these filters. */
function writeFilters(f: Filters) {
  navigate(`/tasks${query({ status: f.status, tag: f.tag, q: f.q, agent_id: f.agent_id, offset: f.offset || undefined })}`, true);
}

export function Tasks() {
  const { search } = useLocation();
  const filters = readFilters(search);
  const key = search.toString();
  const tasks = useLoad(
    () => api.get<List<Task>>(`/api/tasks${query({ ...filters, offset: filters.offset || undefined, limit: PAGE_SIZE })}`),
    [key],
  );
  useRefetchOn(isTaskChange, tasks.reload);
  const agents = useLoad(() => api.get<List<Agent>>("/api/agents?limit=500"), []);
  const agentList = agents.data?.items ?? [];
  const agentName = (id: number | null) => (id ? (agentList.find((a) => a.id === id)?.name ?? `agent ${id}`) : "—");
  const [creating, setCreating] = useState(false);

  // Free text is applied on submit (Enter or the button), not per keystroke.
  const [text, setText] = useState({ q: filters.q, tag: filters.tag });
  useEffect(() => setText({ q: filters.q, tag: filters.tag }), [filters.q, filters.tag]);
  const apply = (change: Partial<Filters>) => writeFilters({ ...filters, ...change, offset: change.offset ?? 0 });

  const d = tasks.data;
  return (
    <div>
      <div class="row page-head">
        <h1>Tasks</h1>
        <span class="spacer" />
        {!creating ? (
          <button class="primary" onClick={() => setCreating(true)}>
            New task
          </button>
        ) : null}
      </div>
      {creating ? (
        <TaskForm agents={agentList} onSaved={(t) => navigate(`/tasks/${t.id}`)} onCancel={() => setCreating(false)} />
      ) : null}
      <form
        class="card filters"
        onSubmit={(e) => {
          e.preventDefault();
          apply({ q: text.q.trim(), tag: text.tag.trim() });
        }}
      >
        <label>
          <span class="label">Status</span>
          <select name="status" value={filters.status} onChange={(e) => apply({ status: val(e) })}>
            <option value="">any</option>
            {TASK_STATUSES.map((s) => (
              <option value={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          <span class="label">Agent</span>
          <select name="agent_id" value={filters.agent_id} onChange={(e) => apply({ agent_id: val(e) })}>
            <option value="">any</option>
            {agentList.map((a) => (
              <option value={String(a.id)}>{a.name}</option>
            ))}
            {/* A filter from the URL on an agent that is gone still shows as selected. */}
            {filters.agent_id && !agentList.some((a) => String(a.id) === filters.agent_id) ? (
              <option value={filters.agent_id}>agent {filters.agent_id}</option>
            ) : null}
          </select>
        </label>
        <label>
          <span class="label">Tag</span>
          <input name="tag" value={text.tag} onInput={(e) => setText({ ...text, tag: val(e) })} />
        </label>
        <FilterSearch
          value={text.q}
          placeholder="title or description"
          onInput={(v) => setText({ ...text, q: v })}
          onClear={() => writeFilters(readFilters(new URLSearchParams()))}
        />
      </form>
      <ErrorBanner error={tasks.error} />
      <ErrorBanner error={agents.error} />
      {!d ? (
        tasks.loading ? <p class="muted">Loading…</p> : null
      ) : (
        <div class="card">
          {!d.items.length ? (
            <p class="muted">{d.total ? "Nothing on this page." : "No tasks match."}</p>
          ) : (
            <div class="table-wrap">
              <table class="tasks">
                <thead>
                  <tr>
                    <th>#</th>
                    <th>title</th>
                    <th>status</th>
                    <th class="wide">priority</th>
                    <th class="wide">tags</th>
                    <th class="wide">agent</th>
                    <th class="wide">runs</th>
                    <th class="wide">created</th>
                  </tr>
                </thead>
                <tbody>
                  {d.items.map((t) => (
                    <tr key={t.id} data-task={t.id}>
                      <td>{t.id}</td>
                      <td>
                        <Link href={`/tasks/${t.id}`}>{t.title}</Link>
                      </td>
                      <td>
                        <Badge status={t.status} />
                      </td>
                      <td class="wide">{t.priority}</td>
                      <td class="wide">
                        {t.tags.map((g) => (
                          <button type="button" class="tag" title={`only tag ${g}`} onClick={() => apply({ tag: g })}>
                            {g}
                          </button>
                        ))}
                      </td>
                      <td class="wide">{agentName(t.agent_id)}</td>
                      <td class="wide">
                        {t.executions_total}
                        {t.executions_active ? <span class="muted"> ({t.executions_active} active)</span> : null}
                      </td>
                      <td class="wide">
                        <Ago at={t.created_at} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          <Pager total={d.total} offset={filters.offset} pageSize={PAGE_SIZE} onPage={(offset) => apply({ offset })} />
        </div>
      )}
    </div>
  );
}
