// A read-only file browser: `/files?path=ABS` lists a directory or shows a file, inside the
// server's allowed roots and run worktrees only (the server decides; this page just asks).

import { api } from "../api";
import { useLocation } from "../router";
import { ErrorBanner, Link, useLoad } from "../ui";
import "../components/changes.css";

interface Entry {
  name: string;
  type: "dir" | "file" | "symlink" | "other";
  size: number;
  inside?: boolean;
}

type Listing =
  | { type: "dir"; path: string; parent: string | null; entries: Entry[]; truncated: boolean }
  | { type: "file"; path: string; size: number; binary: boolean; content: string | null; truncated: boolean };

const at = (path: string) => `/files?path=${encodeURIComponent(path)}`;
const join = (dir: string, name: string) => (dir.endsWith("/") ? dir + name : `${dir}/${name}`);
const parentOf = (path: string) => path.replace(/\/[^/]*$/, "") || "/";

export function Files() {
  const { search } = useLocation();
  const path = search.get("path") ?? "";
  const l = useLoad(
    () => (path ? api.get<Listing>(`/api/files?path=${encodeURIComponent(path)}`) : Promise.resolve(undefined)),
    [path],
  );
  const d = l.data;
  return (
    <div class="files">
      <div class="row page-head">
        <h1>Files</h1>
        <span class="muted small">read-only</span>
      </div>
      <p class="mono crumbs">{path || "Open a directory from a run's Changes tab, or add ?path=/absolute/dir"}</p>
      <ErrorBanner error={l.error} />
      {l.loading && !d ? <p class="muted">Loading…</p> : null}
      {d?.type === "dir" ? <DirView d={d} /> : null}
      {d?.type === "file" ? <FileView f={d} /> : null}
    </div>
  );
}

function DirView(props: { d: Extract<Listing, { type: "dir" }> }) {
  const d = props.d;
  return (
    <section class="card">
      <ul class="dir-list">
        {d.parent ? (
          <li>
            <Link href={at(d.parent)}>..</Link>
          </li>
        ) : null}
        {d.entries.map((e) => (
          <li key={e.name} class={`entry entry-${e.type}`}>
            {e.type === "symlink" && e.inside === false ? (
              <span class="muted" title="leads outside the allowed roots">
                {e.name} ↗
              </span>
            ) : e.type === "other" ? (
              <span class="muted">{e.name}</span>
            ) : (
              <Link href={at(join(d.path, e.name))}>
                {e.name}
                {e.type === "dir" ? "/" : ""}
              </Link>
            )}
            {e.type === "file" ? <span class="muted small"> {e.size.toLocaleString()} B</span> : null}
          </li>
        ))}
      </ul>
      {d.truncated ? <p class="notice">Only the first 5000 entries are listed.</p> : null}
    </section>
  );
}

function FileView(props: { f: Extract<Listing, { type: "file" }> }) {
  const f = props.f;
  return (
    <section class="card">
      <div class="row">
        <Link href={at(parentOf(f.path))}>← {parentOf(f.path)}</Link>
        <span class="spacer" />
        <span class="muted small">{f.size.toLocaleString()} bytes</span>
        <a class="button" href={`/api/files?path=${encodeURIComponent(f.path)}&download=1`} download>
          Download
        </a>
      </div>
      {f.binary ? (
        <p class="muted">A binary file: download it to look inside.</p>
      ) : (
        <pre class="output file-text">{f.content}</pre>
      )}
      {f.truncated ? <p class="notice">Only the first 1 MiB is shown.</p> : null}
    </section>
  );
}
