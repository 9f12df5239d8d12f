// The terminals page: tabs of open sessions (live and recently exited), the new-terminal form,
// and the selected session's terminal. The URL is the selection (/terminals/{id},
// /agent-sessions/{id}; `?mode=ro` for a read-only view), so a deep link survives a reload.

import { useEffect, useState } from "preact/hooks";
import { ApiError, type SessionInfo } from "../api";
import { splitArgv } from "../components/text";
import { useRefetchOn } from "../components/live";
import type { ServerEvent } from "../events";
import { navigate, useLocation } from "../router";
import {
  createTerminal,
  exitText,
  getSession,
  listTerminals,
  sessionLabel,
  sessionSubtitle,
  sessionPage,
  sessionWsPath,
  stopSession,
  type SessionKind,
} from "../term/api";
import type { Mode } from "../term/session";
import { TermView } from "../term/TermView";
import { AttentionBadge, PendingApprovals } from "../components/Attention";
import { capsBody, CapsFields, isCapError, NO_CAPS, type CapsText } from "../components/Caps";
import { Badge, ConfirmButton, ErrorBanner, Field, Link, useLoad, val, useAction } from "../ui";
import { setPageTitle } from "../title";

/** Session events worth a refetch: a session started or ended (not the 5-second activity ticks). */
function touchesSessions(e: ServerEvent): boolean {
  if (e.type === "session.exited") return true;
  const type = e.data?.type;
  return (e.type === "execution.started" || e.type === "execution.finished") && (type === "terminal" || type === "agent_session");
}

/** A live session's activity tick (`execution.updated`, at most every 5 s per session). */
function isSessionActivity(e: ServerEvent): boolean {
  const type = e.data?.type;
  return e.type === "execution.updated" && (type === "terminal" || type === "agent_session");
}

/** The tabs' titles refresh on activity ticks at most this often, however many sessions print. */
const ACTIVITY_REFETCH_MS = 5000;

export function Terminals(props: { id?: string; kind?: SessionKind }) {
  const kind = props.kind ?? "terminal";
  const id = props.id;
  const { path, search } = useLocation();
  const mode: Mode = search.get("mode") === "ro" ? "ro" : "rw";
  const [formOpen, setFormOpen] = useState(false);
  const [actionError, setActionError] = useState<unknown>(null);
  const list = useLoad(listTerminals, []);
  const current = useLoad<SessionInfo | null>(() => (id ? getSession(kind, id) : Promise.resolve(null)), [kind, id]);

  const refresh = () => {
    list.reload();
    current.reload();
  };
  useRefetchOn(touchesSessions, refresh);
  // A session's activity tick (every 5 s while it prints) may come with a new title for its tab.
  useRefetchOn(isSessionActivity, list.reload, ACTIVITY_REFETCH_MS);
  useRefetchOn((e) => e.type === "attention.changed" && e.data?.session_id === id, current.reload);
  const gone = current.error instanceof ApiError && current.error.status === 404;
  // The open session's title as its view sees it set (live), over the one fetched with it.
  const [liveTitle, setLiveTitle] = useState<{ id: string; title: string | null } | null>(null);
  const fetched = current.data;
  const info = fetched && liveTitle?.id === fetched.id ? { ...fetched, title: liveTitle.title } : fetched;
  const pageTitle = id && info ? sessionLabel(info) : null;
  useEffect(() => {
    setPageTitle(pageTitle);
    return () => setPageTitle(null);
  }, [pageTitle]);

  const stop = async () => {
    if (!id) return;
    setActionError(null);
    const wasRunning = info?.status === "running";
    try {
      await stopSession(kind, id);
      if (wasRunning) refresh();
      else {
        list.reload();
        navigate("/terminals");
      }
    } catch (e) {
      setActionError(e);
    }
  };

  return (
    <div class="term-page">
      <SessionTabs
        kind={kind}
        id={id}
        terminals={list.data?.items ?? []}
        current={info ?? undefined}
        onNew={() => setFormOpen(!formOpen)}
        formOpen={formOpen || !id}
      />
      {formOpen || !id ? (
        <NewTerminalForm
          onCreated={(s) => {
            setFormOpen(false);
            list.reload();
            navigate(sessionPage("terminal", s.id));
          }}
          onCancel={id ? () => setFormOpen(false) : undefined}
        />
      ) : null}
      <ErrorBanner error={list.error} />
      <ErrorBanner error={current.error} />
      <ErrorBanner error={actionError} onClose={() => setActionError(null)} />
      {id && kind === "agent_session" ? <PendingApprovals sessionId={id} /> : null}
      {id && !gone ? (
        <TermView
          key={`${kind}:${id}`}
          wsPath={sessionWsPath(kind, id)}
          mode={mode}
          onModeChange={(m) => navigate(path + (m === "ro" ? "?mode=ro" : ""), true)}
          onExit={refresh}
          onTitle={(title) => id && setLiveTitle({ id, title })}
          status={info ? <SessionStatus s={info} /> : null}
          actions={
            // Stopping kills the session's programs: asked twice. Closing an ended one is not.
            info && info.status !== "running" ? (
              <button type="button" onClick={stop}>
                Close
              </button>
            ) : (
              <ConfirmButton
                label="Stop"
                confirm={kind === "agent_session" ? "Stop this agent session?" : "Stop this terminal?"}
                onConfirm={stop}
                disabled={!info}
              />
            )
          }
        />
      ) : null}
      {!id && list.data && list.data.items.length === 0 ? (
        <p class="muted term-empty">No terminals yet: open one above.</p>
      ) : null}
    </div>
  );
}

function SessionStatus(props: { s: SessionInfo }) {
  const s = props.s;
  const subtitle = sessionSubtitle(s);
  const exit = exitText(s.exit_code, s.exit_signal);
  return (
    <>
      <span class="title" title={`${s.argv.join(" ")}\nin ${s.cwd}`}>
        {sessionLabel(s)}
      </span>
      {/* A name the user gave is the label; the title the program set goes beside it. */}
      {subtitle ? (
        <span class="term-title" title={subtitle}>
          {subtitle}
        </span>
      ) : null}
      {/* The exit status itself is in the connection badge ("exited (exit 0)"); here on hover. */}
      <span title={exit || undefined}>
        <Badge status={s.status} />
      </span>
      <AttentionBadge value={s.attention} />
    </>
  );
}

function SessionTabs(props: {
  kind: SessionKind;
  id?: string;
  terminals: SessionInfo[];
  current?: SessionInfo;
  formOpen: boolean;
  onNew: () => void;
}) {
  const c = props.current;
  // The open one as the page knows it best (its title is live).
  const tabs: [SessionKind, SessionInfo][] = props.terminals.map((s) => ["terminal", c && s.id === c.id ? c : s]);
  // An agent session, or a terminal not (yet) in the list, still gets its tab.
  if (c && !(props.kind === "terminal" && props.terminals.some((s) => s.id === c.id))) tabs.unshift([props.kind, c]);
  return (
    <div class="term-tabs-row">
    <nav class="term-tabs" aria-label="sessions">
      {tabs.map(([kind, s]) => (
        <Link
          href={sessionPage(kind, s.id)}
          class={kind === props.kind && s.id === props.id ? "tab active" : "tab"}
          title={[s.title, `${s.argv.join(" ")} — ${s.status}`].filter(Boolean).join("\n")}
        >
          <span class={s.status === "running" ? "dot running" : "dot"} />
          <span class="label">{sessionLabel(s)}</span>
        </Link>
      ))}
    </nav>
      {/* Outside the scrolling strip, so many tabs never push it off a phone's screen. Without a
          selection the form is always open; the button only shows or hides it beside a terminal. */}
      {props.id ? (
        <button type="button" class="new" aria-label="New terminal" aria-expanded={props.formOpen} onClick={props.onNew}>
          + <span class="new-word">New terminal</span>
        </button>
      ) : null}
    </div>
  );
}

function NewTerminalForm(props: { onCreated: (s: SessionInfo) => void; onCancel?: () => void }) {
  const [cwd, setCwd] = useState("");
  const [command, setCommand] = useState("");
  const [name, setName] = useState("");
  const [caps, setCaps] = useState<CapsText>(NO_CAPS);
  const { busy, error, setError, act } = useAction();
  const submit = async (e: Event) => {
    e.preventDefault();
    await act(async () => {
      const argv = splitArgv(command);
      const { memory_max_bytes, pids_max } = capsBody(caps);
      const s = await createTerminal({
        command: argv.length ? argv : undefined,
        cwd: cwd.trim() || undefined,
        name: name.trim() || undefined,
        memory_max_bytes: memory_max_bytes ?? undefined,
        pids_max: pids_max ?? undefined,
      });
      props.onCreated(s);
    });
  };
  return (
    <form class="card term-form" onSubmit={submit} aria-label="new terminal">
      <div class="fields">
        <Field label="Working directory" hint="Empty: your home directory.">
          <input name="cwd" value={cwd} onInput={(e) => setCwd(val(e))} placeholder="/home/me/project" autocomplete="off" />
        </Field>
        <Field label="Command" hint={`Split on spaces; quote with ' or ". Empty: your login shell.`}>
          <input name="command" value={command} onInput={(e) => setCommand(val(e))} placeholder="bash" autocomplete="off" spellcheck={false} />
        </Field>
        <Field label="Name">
          <input name="name" value={name} onInput={(e) => setName(val(e))} placeholder="optional" autocomplete="off" />
        </Field>
        <CapsFields caps={caps} onChange={setCaps} error={error} />
      </div>
      <ErrorBanner error={isCapError(error) ? null : error} onClose={() => setError(null)} />
      <div class="row">
        <button type="submit" class="primary" disabled={busy}>
          {busy ? "Opening…" : "Open terminal"}
        </button>
        {props.onCancel ? (
          <button type="button" onClick={props.onCancel}>
            Cancel
          </button>
        ) : null}
      </div>
    </form>
  );
}
