// Create or edit an agent definition. The form holds plain text; `toBody` turns it into the
// API's shape (argv, env map, lists). Server errors are shown with their message and the field
// they name is highlighted (docs/agents.md lists the rules; the server is the judge).
// The kind (`GET /api/agent-kinds`) decides which fields are offered: one the CLI has no flag
// for is hidden and sent empty; choosing a kind fills in its command and session flags where
// they were empty or still the previous kind's defaults.

import { useState } from "preact/hooks";
import { api, ApiError, type Agent, type AgentKindInfo, type AgentKindName } from "../api";
import { Field, fieldIs, FormActions, val, useAction, useLoad } from "../ui";
import { capsBody, CapsFields, capsText, isCapError, NO_CAPS, type CapsText } from "./Caps";
import { formatEnv, joinArgv, parseEnv, splitArgv, splitList } from "./text";

/** The server's defaults (src/http/agents.rs), shown in a new form. */
const DEFAULTS = {
  idle: "1800",
  backoffInitialMs: "1000",
  backoffMaxMs: "60000",
  maxRestarts: "5",
  windowSecs: "600",
};

interface FormState {
  kind: AgentKindName;
  name: string;
  description: string;
  command: string;
  args: string;
  sessionFirst: string;
  sessionResume: string;
  model: string;
  systemPrompt: string;
  projectDir: string;
  permissionMode: string;
  allowedTools: string;
  env: string;
  idle: string;
  policy: "never" | "on-failure";
  backoffInitialMs: string;
  backoffMaxMs: string;
  maxRestarts: string;
  windowSecs: string;
  caps: CapsText;
}

function fromAgent(a?: Agent): FormState {
  if (!a)
    return {
      kind: "claude",
      name: "",
      description: "",
      command: "claude",
      args: "",
      // Claude Code's flags (the server's defaults); another CLI needs its own, or none.
      sessionFirst: "--session-id {session_id}",
      sessionResume: "--resume {session_id}",
      model: "",
      systemPrompt: "",
      projectDir: "",
      permissionMode: "",
      allowedTools: "",
      env: "",
      policy: "never",
      caps: NO_CAPS,
      ...DEFAULTS,
    };
  return {
    kind: a.kind ?? "claude",
    name: a.name,
    description: a.description,
    command: joinArgv(a.command),
    args: joinArgv(a.args),
    sessionFirst: joinArgv(a.session_args.first),
    sessionResume: joinArgv(a.session_args.resume),
    model: a.model ?? "",
    systemPrompt: a.system_prompt ?? "",
    projectDir: a.project_dir ?? "",
    permissionMode: a.permission_mode ?? "",
    allowedTools: a.allowed_tools.join(", "),
    env: formatEnv(a.env),
    idle: String(a.idle_timeout_secs),
    policy: a.restart.policy,
    backoffInitialMs: String(a.restart.backoff_initial_ms),
    backoffMaxMs: String(a.restart.backoff_max_ms),
    maxRestarts: String(a.restart.max_restarts),
    windowSecs: String(a.restart.window_secs),
    caps: capsText(a.memory_max_bytes, a.pids_max),
  };
}

/** A whole number typed in the form; anything else is an error on `field` before sending. */
function int(text: string, field: string): number {
  const n = Number(text.trim());
  if (!text.trim() || !Number.isInteger(n) || n < 0)
    throw new ApiError(0, "invalid_input", `${field}: must be a whole number ≥ 0`, field);
  return n;
}

/**
 * The request body. Empty optional texts are `null` (PATCH: clear; POST: the default), and
 * `[redacted]` env values go back unchanged so the server keeps the stored secret.
 */
function toBody(f: FormState, kind?: AgentKindInfo) {
  let env: Record<string, string>;
  try {
    env = parseEnv(f.env);
  } catch (e) {
    throw new ApiError(0, "invalid_input", (e as Error).message, "env");
  }
  const argv = (text: string, field: string) => {
    try {
      return splitArgv(text);
    } catch (e) {
      throw new ApiError(0, "invalid_input", `${field}: ${(e as Error).message}`, field);
    }
  };
  const command = argv(f.command, "command");
  const orNull = (s: string) => (s.trim() ? s : null);
  // A field the kind has no flag for is sent empty (the server refuses it otherwise).
  const can = kind?.supports;
  return {
    kind: f.kind,
    name: f.name,
    description: f.description,
    command: command.length ? command : (kind?.default_command ?? ["claude"]),
    args: argv(f.args, "args"),
    session_args: { first: argv(f.sessionFirst, "session_args.first"), resume: argv(f.sessionResume, "session_args.resume") },
    model: can && !can.model ? null : orNull(f.model.trim()),
    system_prompt: can && !can.system_prompt ? null : orNull(f.systemPrompt),
    project_dir: orNull(f.projectDir.trim()),
    permission_mode: can && !can.permission_modes.includes(f.permissionMode) ? null : orNull(f.permissionMode),
    allowed_tools: can && !can.allowed_tools ? [] : splitList(f.allowedTools),
    env,
    ...capsBody(f.caps),
    idle_timeout_secs: int(f.idle, "idle_timeout_secs"),
    restart: {
      policy: f.policy,
      backoff_initial_ms: int(f.backoffInitialMs, "restart.backoff_initial_ms"),
      backoff_max_ms: int(f.backoffMaxMs, "restart.backoff_max_ms"),
      max_restarts: int(f.maxRestarts, "restart.max_restarts"),
      window_secs: int(f.windowSecs, "restart.window_secs"),
    },
  };
}

export function AgentForm(props: { agent?: Agent; onSaved: (a: Agent) => void; onCancel: () => void }) {
  const [f, setF] = useState<FormState>(() => fromAgent(props.agent));
  const { busy, error, act } = useAction();
  const set = (k: keyof FormState) => (e: Event) => setF({ ...f, [k]: val(e) });
  const bad = (name: string) => fieldIs(error, name);
  const kinds = useLoad(() => api.get<{ items: AgentKindInfo[] }>("/api/agent-kinds"), []).data?.items;
  const kind = kinds?.find((k) => k.kind === f.kind);
  const can = kind?.supports;

  /** A new kind: its command and session flags replace empty ones or the old kind's defaults. */
  const chooseKind = (e: Event) => {
    const next = kinds?.find((k) => k.kind === val(e));
    if (!next) return;
    const was = (text: string, dflt?: string[]) => !text.trim() || (dflt && text === joinArgv(dflt));
    setF({
      ...f,
      kind: next.kind,
      command: was(f.command, kind?.default_command) ? joinArgv(next.default_command) : f.command,
      sessionFirst: was(f.sessionFirst, kind?.session_args.first) ? joinArgv(next.session_args.first) : f.sessionFirst,
      sessionResume: was(f.sessionResume, kind?.session_args.resume) ? joinArgv(next.session_args.resume) : f.sessionResume,
    });
  };

  const submit = async (e: Event) => {
    e.preventDefault();
    await act(async () => {
      const body = toBody(f, kind);
      const saved = props.agent
        ? await api.patch<Agent>(`/api/agents/${props.agent.id}`, body)
        : await api.post<Agent>("/api/agents", body);
      props.onSaved(saved);
    });
  };

  return (
    <form class="card agent-form" onSubmit={submit}>
      <h2>{props.agent ? `Edit ${props.agent.name}` : "New agent"}</h2>
      <div class="form-grid">
        <Field label="Name" invalid={bad("name")}>
          <input name="name" value={f.name} onInput={set("name")} required maxLength={64} />
        </Field>
        <Field label="Agent CLI" invalid={bad("kind")} hint={kindHint(kind)}>
          <select name="kind" value={f.kind} onChange={chooseKind}>
            {(kinds ?? []).map((k) => (
              <option value={k.kind}>{k.label}</option>
            ))}
            {kinds ? null : <option value={f.kind}>{f.kind}</option>}
          </select>
        </Field>
        <Field label="Command" invalid={bad("command")} hint="argv: words split on spaces; quote words with spaces">
          <input
            name="command"
            class="mono"
            value={f.command}
            onInput={set("command")}
            placeholder={kind?.default_command.length ? joinArgv(kind.default_command) : "program and its arguments"}
          />
        </Field>
        {can && !can.model ? null : (
          <Field label="Model" invalid={bad("model")} hint="optional, e.g. sonnet">
            <input name="model" value={f.model} onInput={set("model")} />
          </Field>
        )}
        <Field label="Project directory" invalid={bad("project_dir")} hint="default: the server user's home">
          <input name="project_dir" class="mono" value={f.projectDir} onInput={set("projectDir")} />
        </Field>
        {can && !can.permission_modes.length ? null : (
          <Field label="Permission mode" invalid={bad("permission_mode")}>
            <select name="permission_mode" value={f.permissionMode} onChange={set("permissionMode")}>
              <option value="">(CLI default)</option>
              {(can?.permission_modes ?? []).map((m) => (
                <option value={m}>{m}</option>
              ))}
            </select>
          </Field>
        )}
        {can && !can.allowed_tools ? null : (
          <Field label="Allowed tools" invalid={bad("allowed_tools")} hint="comma-separated, e.g. Read, Edit, Bash(git log:*)">
            <input name="allowed_tools" value={f.allowedTools} onInput={set("allowedTools")} />
          </Field>
        )}
        <Field label="Idle timeout (s)" invalid={bad("idle_timeout_secs")} hint="a session idle this long is stopped; 0 = never">
          <input name="idle_timeout_secs" inputMode="numeric" value={f.idle} onInput={set("idle")} />
        </Field>
        <Field label="Restart policy" invalid={bad("restart.policy")} hint="on-failure restarts a crashed session, resuming it">
          <select name="restart_policy" value={f.policy} onChange={set("policy")}>
            <option value="never">never</option>
            <option value="on-failure">on-failure</option>
          </select>
        </Field>
        <CapsFields caps={f.caps} onChange={(caps) => setF({ ...f, caps })} error={error} />
      </div>
      {f.policy === "on-failure" ? (
        <div class="form-grid restart">
          <Field label="First backoff (ms)" invalid={bad("restart.backoff_initial_ms")}>
            <input name="backoff_initial_ms" inputMode="numeric" value={f.backoffInitialMs} onInput={set("backoffInitialMs")} />
          </Field>
          <Field label="Max backoff (ms)" invalid={bad("restart.backoff_max_ms")}>
            <input name="backoff_max_ms" inputMode="numeric" value={f.backoffMaxMs} onInput={set("backoffMaxMs")} />
          </Field>
          <Field label="Max restarts" invalid={bad("restart.max_restarts")}>
            <input name="max_restarts" inputMode="numeric" value={f.maxRestarts} onInput={set("maxRestarts")} />
          </Field>
          <Field label="Within (s)" invalid={bad("restart.window_secs")}>
            <input name="window_secs" inputMode="numeric" value={f.windowSecs} onInput={set("windowSecs")} />
          </Field>
        </div>
      ) : null}
      <div class="form-grid">
        <Field label="Extra arguments" invalid={bad("args")} hint="appended to every start and run, as typed">
          <input name="args" class="mono" value={f.args} onInput={set("args")} spellcheck={false} />
        </Field>
        <Field
          label="Session flags: first start"
          invalid={bad("session_args.first")}
          hint="{session_id} is the conversation id; empty for a CLI without one"
        >
          <input name="session_first" class="mono" value={f.sessionFirst} onInput={set("sessionFirst")} spellcheck={false} />
        </Field>
        <Field label="Session flags: resume" invalid={bad("session_args.resume")} hint="used to continue a conversation">
          <input name="session_resume" class="mono" value={f.sessionResume} onInput={set("sessionResume")} spellcheck={false} />
        </Field>
      </div>
      <Field label="Description" invalid={bad("description")}>
        <textarea name="description" rows={2} value={f.description} onInput={set("description")} />
      </Field>
      {can && !can.system_prompt ? null : (
        <Field label="System prompt" invalid={bad("system_prompt")} hint="appended to the CLI's own (--append-system-prompt)">
          <textarea name="system_prompt" rows={3} value={f.systemPrompt} onInput={set("systemPrompt")} />
        </Field>
      )}
      <Field
        label="Environment"
        invalid={bad("env")}
        hint="NAME=value, one per line; secret values show as [redacted] — leave them so to keep them"
      >
        <textarea name="env" rows={3} value={f.env} onInput={set("env")} spellcheck={false} />
      </Field>
      <FormActions error={isCapError(error) ? null : error} busy={busy} submit={props.agent ? "Save" : "Create agent"} onCancel={props.onCancel} />
    </form>
  );
}

/** What the chosen kind does with the form: the fields it has no flag for, and its output. */
function kindHint(k?: AgentKindInfo): string {
  if (!k) return "";
  if (k.kind === "command") return "any program: only the command, extra arguments and session flags you write";
  const lacks = [
    k.supports.model ? null : "model",
    k.supports.system_prompt ? null : "system prompt",
    k.supports.permission_modes.length ? null : "permission mode",
    k.supports.allowed_tools ? null : "allowed tools",
  ].filter(Boolean);
  const output = k.supports.headless_output === "text" ? "plain-text output" : "JSON output parsed";
  return `${lacks.length ? `no ${lacks.join(", ")} flag` : "every field"} · runs: ${output}`;
}
