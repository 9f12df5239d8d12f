// Create or edit a task's fields (not its status: that moves by the state machine's buttons).
// Server errors show with their message, and the field they name is highlighted.

import { useState } from "preact/hooks";
import { api, type Agent, type Task } from "../api";
import { Field, fieldIs, FormActions, val, useAction } from "../ui";
import { splitList } from "./text";

interface FormState {
  title: string;
  description: string;
  priority: string;
  tags: string;
  projectPath: string;
  agentId: string;
}

function fromTask(t?: Task): FormState {
  return {
    title: t?.title ?? "",
    description: t?.description ?? "",
    priority: String(t?.priority ?? 5),
    tags: t?.tags.join(", ") ?? "",
    projectPath: t?.project_path ?? "",
    agentId: t?.agent_id ? String(t.agent_id) : "",
  };
}

export function TaskForm(props: { task?: Task; agents: Agent[]; onSaved: (t: Task) => void; onCancel: () => void }) {
  const [f, setF] = useState<FormState>(() => fromTask(props.task));
  const { busy, error, act } = useAction();
  const set = (k: keyof FormState) => (e: Event) => setF({ ...f, [k]: val(e) });
  const bad = (name: string) => fieldIs(error, name);

  const submit = async (e: Event) => {
    e.preventDefault();
    // Empty optional fields are null: on PATCH that clears them, on POST it is the default.
    const body = {
      title: f.title,
      description: f.description,
      priority: Number(f.priority),
      tags: splitList(f.tags),
      project_path: f.projectPath.trim() || null,
      agent_id: f.agentId ? Number(f.agentId) : null,
    };
    await act(async () => {
      const saved = props.task
        ? await api.patch<Task>(`/api/tasks/${props.task.id}`, body)
        : await api.post<Task>("/api/tasks", body);
      props.onSaved(saved);
    });
  };

  return (
    <form class="card task-form" onSubmit={submit}>
      <h2>{props.task ? "Edit task" : "New task"}</h2>
      <Field label="Title" invalid={bad("title")}>
        <input name="title" value={f.title} onInput={set("title")} required maxLength={200} />
      </Field>
      <Field label="Description" invalid={bad("description")} hint="sent to the agent after the title">
        <textarea name="description" rows={4} value={f.description} onInput={set("description")} />
      </Field>
      <div class="form-grid">
        <Field label="Priority (1–10)" invalid={bad("priority")} hint="higher runs first">
          <input name="priority" type="number" min={1} max={10} value={f.priority} onInput={set("priority")} />
        </Field>
        <Field label="Tags" invalid={bad("tags")} hint="comma-separated">
          <input name="tags" value={f.tags} onInput={set("tags")} />
        </Field>
        <Field label="Project path" invalid={bad("project_path")} hint="default: the agent's project dir">
          <input name="project_path" class="mono" value={f.projectPath} onInput={set("projectPath")} />
        </Field>
        <Field label="Agent" invalid={bad("agent_id")}>
          <select name="agent_id" value={f.agentId} onChange={set("agentId")}>
            <option value="">(none)</option>
            {props.agents.map((a) => (
              <option value={String(a.id)}>{a.name}</option>
            ))}
          </select>
        </Field>
      </div>
      <FormActions error={error} busy={busy} submit={props.task ? "Save" : "Create task"} onCancel={props.onCancel} />
    </form>
  );
}
