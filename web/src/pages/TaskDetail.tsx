// One task: its fields (view / edit), the status moves the state machine allows, delete, a
// headless run with an agent, and the task's executions — all live.

import { useState } from "preact/hooks";
import { api, query, type Agent, type Execution, type List, type Task, type TaskStatus } from "../api";
import { ExecutionsTable } from "../components/ExecutionsTable";
import { isExecutionChange, useDeleted, useRefetchOn } from "../components/live";
import { TaskForm } from "../components/TaskForm";
import { navigate } from "../router";
import { Ago, Badge, ConfirmButton, ErrorBanner, Field, fieldIs, Gone, Link, useLoad, val, useAction } from "../ui";

/** The state machine of docs/api.md: where each status may go (setting the same is a no-op). */
const NEXT: Record<TaskStatus, TaskStatus[]> = {
  draft: ["pending", "cancelled"],
  pending: ["running", "draft", "cancelled"],
  running: ["succeeded", "failed", "cancelled"],
  succeeded: [],
  failed: ["pending"],
  cancelled: ["pending"],
};

/** What a move means to the user; "pending" from failed/cancelled is a retry. */
function moveLabel(from: TaskStatus, to: TaskStatus): string {
  if (to === "pending") return from === "draft" ? "Ready (pending)" : from === "pending" ? "Pending" : "Retry (pending)";
  if (to === "draft") return "Back to draft";
  if (to === "cancelled") return "Cancel task";
  return `Mark ${to}`;
}

export function TaskDetail(props: { id: string }) {
  const path = `/api/tasks/${encodeURIComponent(props.id)}`;
  const task = useLoad(() => api.get<Task>(path), [props.id]);
  const execs = useLoad(
    () => api.get<List<Execution>>(`/api/executions${query({ task_id: props.id, limit: 50 })}`),
    [props.id],
  );
  const agents = useLoad(() => api.get<List<Agent>>("/api/agents?limit=500"), []);
  const gone = useDeleted("task.deleted", props.id);
  useRefetchOn((e) => e.type === "task.updated" && String(e.data?.id) === props.id, task.reload);
  useRefetchOn((e) => isExecutionChange(e) && String(e.data?.task_id) === props.id, execs.reload);
  const [editing, setEditing] = useState(false);
  const [actionError, setActionError] = useState<unknown>(null);

  const t = task.data;
  if (gone) return <Gone what="task" back="/tasks" />;
  if (!t) {
    return (
      <div>
        <p>
          <Link href="/tasks">← Tasks</Link>
        </p>
        <ErrorBanner error={task.error} />
        {task.loading ? <p class="muted">Loading…</p> : null}
      </div>
    );
  }
  const agentList = agents.data?.items ?? [];
  const agent = agentList.find((a) => a.id === t.agent_id);

  const move = async (to: TaskStatus) => {
    setActionError(null);
    try {
      task.setData(await api.patch<Task>(path, { status: to }));
    } catch (e) {
      setActionError(e);
    }
  };
  const remove = async () => {
    setActionError(null);
    try {
      await api.del(path);
      navigate("/tasks");
    } catch (e) {
      setActionError(e);
    }
  };

  return (
    <div>
      <p>
        <Link href="/tasks">← Tasks</Link>
      </p>
      <div class="row page-head">
        <h1 class="task-title">{t.title}</h1>
        <Badge status={t.status} />
      </div>
      <div class="row actions">
        {NEXT[t.status].map((to) => (
          <button key={to} data-move={to} onClick={() => move(to)}>
            {moveLabel(t.status, to)}
          </button>
        ))}
        <span class="spacer" />
        {!editing ? <button onClick={() => setEditing(true)}>Edit</button> : null}
        <ConfirmButton label="Delete" confirm="Delete this task?" onConfirm={remove} />
      </div>
      <ErrorBanner error={actionError} onClose={() => setActionError(null)} />
      <ErrorBanner error={task.error} />
      {editing ? (
        <TaskForm
          task={t}
          agents={agentList}
          onSaved={(saved) => {
            task.setData(saved);
            setEditing(false);
          }}
          onCancel={() => setEditing(false)}
        />
      ) : (
        <section class="card">
          {t.description ? <pre class="description">{t.description}</pre> : <p class="muted">No description.</p>}
          <dl class="facts">
            <dt>priority</dt>
            <dd>{t.priority}</dd>
            <dt>tags</dt>
            <dd>{t.tags.length ? t.tags.join(", ") : "—"}</dd>
            <dt>agent</dt>
            <dd>{t.agent_id ? <Link href={`/agents/${t.agent_id}`}>{agent?.name ?? `agent ${t.agent_id}`}</Link> : "—"}</dd>
            <dt>project path</dt>
            <dd class="mono">{t.project_path ?? "(the agent's project dir)"}</dd>
            <dt>created</dt>
            <dd>
              <Ago at={t.created_at} />
            </dd>
            <dt>started</dt>
            <dd>
              <Ago at={t.started_at} />
            </dd>
            <dt>completed</dt>
            <dd>
              <Ago at={t.completed_at} />
            </dd>
          </dl>
        </section>
      )}
      <RunCard
        task={t}
        agents={agentList}
        onStarted={() => {
          execs.reload();
          task.reload();
        }}
      />
      <section class="card">
        <h2>Executions</h2>
        <ErrorBanner error={execs.error} />
        {execs.data ? (
          <ExecutionsTable items={execs.data.items} empty="This task has not run yet." />
        ) : execs.loading ? (
          <p class="muted">Loading…</p>
        ) : null}
      </section>
    </div>
  );
}

/** Queues a headless run: `POST /api/tasks/{id}/run` with an agent (and a conversation to resume). */
function RunCard(props: { task: Task; agents: Agent[]; onStarted: () => void }) {
  const t = props.task;
  const [agentId, setAgentId] = useState(t.agent_id ? String(t.agent_id) : "");
  const [resume, setResume] = useState("");
  const { busy, error, setError, act } = useAction();
  const [started, setStarted] = useState<Execution | null>(null);
  // Until the user picks, follow the task's agent, then the only agent there is.
  const chosen = agentId || (props.agents.length === 1 ? String(props.agents[0].id) : "");

  const run = async (e: Event) => {
    e.preventDefault();
    await act(async () => {
      const body: { agent_id?: number; resume?: string } = {};
      if (chosen) body.agent_id = Number(chosen);
      if (resume.trim()) body.resume = resume.trim();
      const x = await api.post<Execution>(`/api/tasks/${t.id}/run`, body);
      setStarted(x);
      props.onStarted();
    });
  };

  return (
    <form class="card run-card" onSubmit={run}>
      <h2>Run with an agent</h2>
      <p class="muted small">
        The agent gets the title and description as its prompt, headless, in the task's project path (or the
        agent's project dir).
      </p>
      <div class="form-grid">
        <Field label="Agent" invalid={fieldIs(error, "agent_id")}>
          <select name="run_agent" value={chosen} onChange={(e) => setAgentId(val(e))}>
            <option value="">(the task's agent)</option>
            {props.agents.map((a) => (
              <option value={String(a.id)}>{a.name}</option>
            ))}
          </select>
        </Field>
        <Field
          label="Resume conversation"
          invalid={fieldIs(error, "resume")}
          hint="optional: the conversation id shown on a run's page (or use Continue there)"
        >
          <input name="resume" class="mono" value={resume} onInput={(e) => setResume(val(e))} />
        </Field>
      </div>
      <ErrorBanner error={error} onClose={() => setError(null)} />
      <div class="row">
        <button type="submit" class="primary" disabled={busy || t.executions_active > 0}>
          {busy ? "Starting…" : "Run"}
        </button>
        {t.executions_active > 0 ? <span class="muted">a run or session of this task is active</span> : null}
        {started ? (
          <span class="started">
            Queued <Link href={`/executions/${started.id}`}>execution #{started.id}</Link> <Badge status={started.status} />
          </span>
        ) : null}
      </div>
    </form>
  );
}
