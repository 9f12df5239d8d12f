// A run's events as a readable timeline: assistant text in full, tool calls and their results
// collapsed (they are long and mostly skimmed), the final result with its turns, time and cost.
// Shapes are Claude Code's stream-json (docs/agents.md, "Events"); anything else is shown raw.

import type { RunEvent } from "../api";
import { fmtCost, plural } from "../ui";

/** A content block of an assistant or user message. */
interface Block {
  type?: string;
  text?: string;
  name?: string;
  id?: string;
  input?: unknown;
  tool_use_id?: string;
  content?: unknown;
  is_error?: boolean;
}

const blocksOf = (data: Record<string, unknown>): Block[] => {
  const msg = data.message as { content?: unknown } | undefined;
  return Array.isArray(msg?.content) ? (msg.content as Block[]) : [];
};

/** A tool result's content: a string, or a list of text blocks. */
function resultText(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content))
    return content.map((c) => (typeof c?.text === "string" ? c.text : JSON.stringify(c))).join("\n");
  return content === undefined ? "" : JSON.stringify(content, null, 2);
}

/** One line to recognise a tool call by: its command, path or pattern when it has one. */
function toolHint(input: unknown): string {
  if (!input || typeof input !== "object") return "";
  const i = input as Record<string, unknown>;
  const v = i.command ?? i.file_path ?? i.path ?? i.pattern ?? i.url ?? i.description;
  const s = typeof v === "string" ? v : "";
  return s.length > 80 ? s.slice(0, 79) + "…" : s;
}

const time = (ts: string) => {
  const d = new Date(ts);
  return isNaN(d.getTime()) ? ts : d.toLocaleTimeString([], { hour12: false });
};

export function EventTimeline(props: { events: RunEvent[] }) {
  // Tool results name their call by id; show the tool's name next to its result.
  const toolNames = new Map<string, string>();
  for (const e of props.events)
    if (e.kind === "assistant") for (const b of blocksOf(e.data)) if (b.type === "tool_use" && b.id && b.name) toolNames.set(b.id, b.name);
  return (
    <ol class="timeline">
      {props.events.map((e) => (
        <li key={e.seq} class={`ev ev-${e.kind}`} data-seq={e.seq}>
          <span class="ev-time muted" title={e.ts}>
            {time(e.ts)}
          </span>
          <div class="ev-body">
            <EventBody e={e} toolNames={toolNames} />
          </div>
        </li>
      ))}
    </ol>
  );
}

function EventBody(props: { e: RunEvent; toolNames: Map<string, string> }) {
  const { e } = props;
  const d = e.data;
  switch (e.kind) {
    case "system":
      return (
        <span class="muted">
          {String(d.subtype ?? "system")}
          {d.model ? ` · model ${String(d.model)}` : ""}
          {d.cwd ? ` · ${String(d.cwd)}` : ""}
        </span>
      );
    case "assistant":
      return (
        <>
          {blocksOf(d).map((b, i) =>
            b.type === "text" ? (
              <pre key={i} class="ev-text">
                {b.text}
              </pre>
            ) : b.type === "tool_use" ? (
              <details key={i} class="ev-tool">
                <summary>
                  <span class="tool-name">{b.name}</span> <code>{toolHint(b.input)}</code>
                </summary>
                <pre>{JSON.stringify(b.input, null, 2)}</pre>
              </details>
            ) : b.type === "thinking" ? (
              <details key={i} class="ev-thinking">
                <summary>thinking</summary>
                <pre>{String((b as { thinking?: string }).thinking ?? "")}</pre>
              </details>
            ) : (
              <Json key={i} label={b.type ?? "block"} value={b} />
            ),
          )}
        </>
      );
    case "user":
      return (
        <>
          {blocksOf(d).map((b, i) => {
            if (b.type !== "tool_result") return <Json key={i} label={b.type ?? "user"} value={b} />;
            const text = resultText(b.content);
            const name = (b.tool_use_id && props.toolNames.get(b.tool_use_id)) || "tool";
            return (
              <details key={i} class={b.is_error ? "ev-result bad" : "ev-result"}>
                <summary>
                  {name} result{b.is_error ? " (error)" : ""} <span class="muted">· {text.length} chars</span>
                </summary>
                <pre>{text}</pre>
              </details>
            );
          })}
        </>
      );
    case "result":
      return <ResultBody d={d} />;
    case "raw":
      return <pre class="ev-raw muted">{String(d.line ?? "")}</pre>;
    default:
      return <Json label={e.kind} value={d} />;
  }
}

function ResultBody(props: { d: Record<string, unknown> }) {
  const d = props.d;
  const isError = d.is_error === true;
  return (
    <div class={isError ? "ev-final bad" : "ev-final"}>
      <div class="small">
        <strong>result</strong> {String(d.subtype ?? "")}
        {typeof d.num_turns === "number" ? ` · ${plural(d.num_turns, "turn")}` : ""}
        {typeof d.duration_ms === "number" ? ` · ${(d.duration_ms / 1000).toFixed(1)} s` : ""}
        {typeof d.total_cost_usd === "number" ? ` · ${fmtCost(d.total_cost_usd)}` : ""}
      </div>
      {typeof d.result === "string" ? <pre>{d.result}</pre> : null}
    </div>
  );
}

function Json(props: { label: string; value: unknown }) {
  return (
    <details class="ev-other">
      <summary>{props.label}</summary>
      <pre>{JSON.stringify(props.value, null, 2)}</pre>
    </details>
  );
}
