// The "Changes" tab of an isolated run or agent session: what the agent changed in its git worktree against the
// commit it started from (uncommitted work included), file by file — side by side on a wide
// screen, unified on a phone — with merge and discard, each asked twice.

import type { ComponentChildren } from "preact";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api, type Execution } from "../api";
import { useRefetchOn } from "./live";
import { useEvents } from "../events";
import "./changes.css";
import { ConfirmButton, ErrorBanner, Link, useAction, useLoad } from "../ui";

export interface FileChange {
  path: string;
  old_path: string | null;
  status: "added" | "modified" | "deleted" | "renamed" | "copied" | "type_changed";
  added: number | null;
  deleted: number | null;
  binary: boolean;
}

export interface Diff {
  execution_id: number;
  branch: string;
  base_commit: string;
  base_branch: string | null;
  state: "active" | "merged" | "discarded";
  worktree: string;
  commits: { id: string; subject: string }[];
  uncommitted: boolean;
  files: FileChange[];
  diff: string;
  truncated: boolean;
}

/** Wide enough for two columns of code. */
const WIDE = "(min-width: 900px)";

function useWide(): boolean {
  const [wide, setWide] = useState(() => window.matchMedia(WIDE).matches);
  useEffect(() => {
    const m = window.matchMedia(WIDE);
    const on = () => setWide(m.matches);
    m.addEventListener("change", on);
    return () => m.removeEventListener("change", on);
  }, []);
  return wide;
}

/**
 * Wraps a run's or an agent session's page: when it has a worktree, tabs `label` (the children)
 * and "Changes"; otherwise just the children.
 */
export function WithChanges(props: { x: Execution; label: string; children: ComponentChildren }) {
  const id = props.x.id;
  const isolated = props.x.isolated === true;
  // Only an isolated run has a diff: asking for any other's would be a 409 in the console.
  const diff = useLoad(
    () => (isolated ? api.get<Diff>(`/api/executions/${id}/diff`) : Promise.resolve(null)),
    [id, isolated],
  );
  // A run that ends or is merged (here or elsewhere) changes what the diff says. A discarded
  // one has no diff left to fetch (409 worktree_removed): it is shown as discarded instead, and
  // from the moment a discard is asked here no refetch goes out (the one the events socket's
  // (re)connect arms, say, would meet the 409).
  const discarding = useRef(false);
  useRefetchOn(
    (e) =>
      (e.type === "execution.finished" && e.data?.id === id) ||
      (e.type === "worktree.merged" && e.data?.execution_id === id),
    () => {
      if (!discarding.current) diff.reload();
    },
  );
  const discarded = () => {
    discarding.current = true;
    diff.setData((d) => d && { ...d, state: "discarded", files: [], diff: "", truncated: false });
  };
  useEvents((e) => {
    if (e.type === "worktree.discarded" && e.data?.execution_id === id) discarded();
  });
  const [tab, setTab] = useState<"run" | "changes">("run");
  if (diff.data === null || (diff.data === undefined && !diff.error)) return <>{props.children}</>;
  const n = diff.data?.files.length;
  return (
    <>
      <div class="tabs" role="tablist">
        <button role="tab" aria-selected={tab === "run"} class={tab === "run" ? "tab on" : "tab"} onClick={() => setTab("run")}>
          {props.label}
        </button>
        <button
          role="tab"
          aria-selected={tab === "changes"}
          class={tab === "changes" ? "tab on" : "tab"}
          onClick={() => setTab("changes")}
        >
          Changes{n !== undefined ? ` (${n})` : ""}
        </button>
      </div>
      {tab === "run" ? (
        props.children
      ) : diff.data ? (
        <Changes
          x={props.x}
          d={diff.data}
          onDiscarding={(on) => (discarding.current = on)}
          onDiscarded={discarded}
        />
      ) : (
        <ErrorBanner error={diff.error} />
      )}
    </>
  );
}

function Changes(props: { x: Execution; d: Diff; onDiscarding: (on: boolean) => void; onDiscarded: () => void }) {
  const { x, d } = props;
  const { busy, error, setError, act } = useAction();
  const [done, setDone] = useState<string | null>(null);
  const ended = x.status !== "pending" && x.status !== "running";
  const open = d.state === "active";
  const merge = () =>
    act(async () => {
      const r = await api.post<{ merge: { branch: string; commit: string; fast_forward: boolean; empty: boolean } }>(
        `/api/executions/${x.id}/merge`,
      );
      const m = r.merge;
      setDone(
        m.empty
          ? `Nothing to merge: ${m.branch} already has these changes.`
          : `Merged into ${m.branch} (${m.fast_forward ? "fast-forward" : "merge commit"} ${m.commit.slice(0, 10)}).`,
      );
      // The worktree.merged event refetches the diff.
    });
  const discard = () =>
    act(async () => {
      props.onDiscarding(true);
      try {
        await api.post(`/api/executions/${x.id}/discard`);
      } catch (e) {
        props.onDiscarding(false);
        throw e;
      }
      setDone("Discarded: the worktree and its branch are deleted.");
      props.onDiscarded();
    });
  // Split once per diff, not at every render (a busy-button click re-renders a 2 MiB diff).
  const parts = useMemo(() => splitDiff(d.diff), [d.diff]);
  return (
    <section class="card changes">
      <div class="row">
        <h2>Changes</h2>
        <span class={`badge state-${d.state}`}>{d.state}</span>
        <span class="spacer" />
        {open ? (
          <>
            <ConfirmButton
              label="Merge"
              confirm={`Merge into ${d.base_branch ?? "(detached)"}?`}
              onConfirm={merge}
              disabled={busy || !ended}
            />
            <ConfirmButton label="Discard" confirm="Delete the worktree and its work?" onConfirm={discard} disabled={busy || !ended} />
          </>
        ) : null}
      </div>
      {!ended && open ? <p class="muted small">It is still going: merge or discard once it ends.</p> : null}
      <ErrorBanner error={error} onClose={() => setError(null)} />
      {done ? <p class="notice">{done}</p> : null}
      <dl class="facts">
        <dt>branch</dt>
        <dd class="mono">{d.branch}</dd>
        <dt>base</dt>
        <dd class="mono">
          {d.base_branch ?? "detached"} @ {d.base_commit.slice(0, 10)}
        </dd>
        <dt>worktree</dt>
        <dd class="mono">
          {open ? <Link href={`/files?path=${encodeURIComponent(d.worktree)}`}>{d.worktree}</Link> : d.worktree}
        </dd>
        <dt>commits</dt>
        <dd>
          {d.commits.length} {d.uncommitted ? "+ uncommitted changes" : ""}
        </dd>
      </dl>
      {d.files.length === 0 ? <p class="muted">No changes.</p> : null}
      <ul class="file-list">
        {d.files.map((f) => (
          <li key={f.path}>
            <a href={`#diff-${anchor(f.path)}`} class={`fstat fstat-${f.status}`}>
              {f.old_path ? `${f.old_path} → ` : ""}
              {f.path}
            </a>{" "}
            <span class="muted small">
              {f.status}
              {f.binary ? " · binary" : ` · +${f.added ?? 0} −${f.deleted ?? 0}`}
            </span>
          </li>
        ))}
      </ul>
      {parts.map((p) => (
        <FileDiff key={p.path} part={p} worktree={open ? d.worktree : null} />
      ))}
      {d.truncated ? <p class="notice">The diff is too large to show in full; the file list above is complete.</p> : null}
    </section>
  );
}

interface Part {
  path: string;
  header: string[];
  hunks: string[];
}

/** Splits a unified diff into files (at `diff --git`), keeping each file's header lines apart. */
export function splitDiff(text: string): Part[] {
  const out: Part[] = [];
  let cur: Part | null = null;
  for (const line of text.split("\n")) {
    if (line.startsWith("diff --git ")) {
      const m = / b\/(.*)$/.exec(line);
      cur = { path: m ? m[1] : line, header: [line], hunks: [] };
      out.push(cur);
    } else if (!cur) {
      continue;
    } else if (cur.hunks.length === 0 && !line.startsWith("@@")) {
      cur.header.push(line);
    } else {
      cur.hunks.push(line);
    }
  }
  return out;
}

const anchor = (path: string) => path.replace(/[^A-Za-z0-9_-]/g, "_");

function FileDiff(props: { part: Part; worktree: string | null }) {
  const wide = useWide();
  const p = props.part;
  // The line that says most: a binary file first, then a rename, a new or deleted file.
  const note = ["Binary files", "rename from", "new file", "deleted file"]
    .map((start) => p.header.find((l) => l.startsWith(start)))
    .find((l) => l !== undefined);
  return (
    <div class="file-diff" id={`diff-${anchor(p.path)}`}>
      <div class="row file-head">
        <span class="mono">{p.path}</span>
        <span class="spacer" />
        {props.worktree ? (
          <Link href={`/files?path=${encodeURIComponent(`${props.worktree}/${p.path}`)}`} class="small">
            view file
          </Link>
        ) : null}
      </div>
      {note ? <p class="muted small">{note}</p> : null}
      {p.hunks.length ? wide ? <SideBySide lines={p.hunks} /> : <Unified lines={p.hunks} /> : null}
    </div>
  );
}

function lineClass(l: string): string {
  if (l.startsWith("@@")) return "hunk";
  if (l.startsWith("+")) return "add";
  if (l.startsWith("-")) return "del";
  return "ctx";
}

function Unified(props: { lines: string[] }) {
  return (
    <pre class="diff unified">
      {props.lines.map((l, i) => (
        <div key={i} class={lineClass(l)}>
          {l || " "}
        </div>
      ))}
    </pre>
  );
}

/** Pairs each run of deletions with the additions that follow it, row by row. */
function SideBySide(props: { lines: string[] }) {
  const rows: [string | null, string | null, string][] = [];
  let dels: string[] = [];
  let adds: string[] = [];
  const flush = () => {
    for (let i = 0; i < Math.max(dels.length, adds.length); i++) rows.push([dels[i] ?? null, adds[i] ?? null, "change"]);
    dels = [];
    adds = [];
  };
  for (const l of props.lines) {
    if (l.startsWith("-")) dels.push(l.slice(1));
    else if (l.startsWith("+")) adds.push(l.slice(1));
    else {
      flush();
      if (l.startsWith("@@")) rows.push([l, l, "hunk"]);
      else if (l.startsWith("\\")) continue;
      else rows.push([l.slice(1), l.slice(1), "ctx"]);
    }
  }
  flush();
  return (
    <table class="diff split">
      <tbody>
        {rows.map(([a, b, kind], i) => (
          <tr key={i} class={kind}>
            <td class={kind === "change" ? (a === null ? "empty" : "del") : ""}>
              <pre>{a ?? ""}</pre>
            </td>
            <td class={kind === "change" ? (b === null ? "empty" : "add") : ""}>
              <pre>{b ?? ""}</pre>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
