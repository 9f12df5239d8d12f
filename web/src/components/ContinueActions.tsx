// "Run again" and "Continue this conversation" on a finished run or agent session: a new run of
// the same task with the same agent (resuming the conversation the run had, when asked), or the
// agent's session (which resumes the agent's conversation by itself).

import { api, type Execution, type RunEvent, type SessionInfo } from "../api";
import { navigate } from "../router";
import { ErrorBanner, useAction } from "../ui";

/**
 * The conversation a headless run had: Claude Code and Gemini CLI name it `session_id` (init and
 * result events), Codex `thread_id` (`thread.started`).
 */
export function conversationOf(events: RunEvent[]): string | null {
  for (let i = events.length - 1; i >= 0; i--) {
    const id = events[i].data?.session_id ?? events[i].data?.thread_id;
    if (typeof id === "string" && id) return id;
  }
  return null;
}

export function ContinueActions(props: { x: Execution; conversation: string | null }) {
  const x = props.x;
  const { busy, error, setError, act } = useAction();
  if (x.status === "pending" || x.status === "running") return null;
  const rerun = (resume?: string) =>
    act(async () => {
      const body: { agent_id?: number; resume?: string } = {};
      if (x.agent_id) body.agent_id = x.agent_id;
      if (resume) body.resume = resume;
      const next = await api.post<Execution>(`/api/tasks/${x.task_id}/run`, body);
      navigate(`/executions/${next.id}`);
    });
  const openSession = () =>
    act(async () => {
      const s = await api.post<SessionInfo>(`/api/agents/${x.agent_id}/session`);
      navigate(`/agent-sessions/${encodeURIComponent(s.id)}`);
    });
  let buttons;
  if (x.type === "agent_run" && x.task_id) {
    buttons = (
      <>
        {props.conversation ? (
          <button class="primary" disabled={busy} onClick={() => rerun(props.conversation!)}>
            Continue this conversation
          </button>
        ) : null}
        <button disabled={busy} onClick={() => rerun()}>
          Run again
        </button>
      </>
    );
  } else if (x.type === "agent_session" && x.agent_id) {
    buttons = (
      <button class="primary" disabled={busy} onClick={openSession}>
        Continue this conversation
      </button>
    );
  } else return null;
  return (
    <>
      <div class="row continue">{buttons}</div>
      <ErrorBanner error={error} onClose={() => setError(null)} />
    </>
  );
}
