// The one table of executions (dashboard, task page, executions page): id, what ran (the task's
// title, else the command and where), type, status, when, how long, cost. Less important columns
// carry `wide` and disappear on a phone.

import type { Execution } from "../api";
import { sessionLabel } from "../term/api";
import { AttentionBadge } from "./Attention";
import { readableReason } from "./Caps";
import { Ago, Badge, fmtCost, fmtDuration, Link } from "../ui";

export const TYPE_LABEL: Record<Execution["type"], string> = {
  terminal: "terminal",
  agent_session: "agent session",
  agent_run: "agent run",
};

/** What an execution is, in a few words: its task's title, else its command and directory. */
export function executionTitle(x: Execution): string {
  if (x.task_title) return x.task_title;
  if (x.task_id) return `task ${x.task_id}`;
  return sessionLabel({ id: `#${x.id}`, name: "", argv: x.command, cwd: x.cwd ?? "" });
}

export function ExecutionsTable(props: { items: Execution[]; empty: string; showTask?: boolean }) {
  if (!props.items.length) return <p class="muted">{props.empty}</p>;
  return (
    <div class="table-wrap">
      <table class="executions">
        <thead>
          <tr>
            <th>#</th>
            {props.showTask ? <th>what</th> : null}
            <th class={props.showTask ? "wide" : undefined}>type</th>
            <th>status</th>
            <th class="wide">created</th>
            <th>duration</th>
            <th class="wide">cost</th>
          </tr>
        </thead>
        <tbody>
          {props.items.map((x) => (
            <tr key={x.id} data-execution={x.id}>
              <td>
                <Link href={`/executions/${x.id}`}>#{x.id}</Link>
              </td>
              {props.showTask ? (
                <td class="what" title={x.reason ? readableReason(x.reason) : undefined}>
                  {x.task_id ? (
                    <Link href={`/tasks/${x.task_id}`}>{executionTitle(x)}</Link>
                  ) : (
                    <span class="mono">{executionTitle(x)}</span>
                  )}
                </td>
              ) : null}
              <td class={props.showTask ? "wide" : undefined}>{TYPE_LABEL[x.type] ?? x.type}</td>
              <td>
                <Badge status={x.status} /> <AttentionBadge value={x.attention} />
              </td>
              <td class="wide">
                <Ago at={x.created_at} />
              </td>
              <td>{x.started_at ? fmtDuration(x.started_at, x.finished_at) : "—"}</td>
              <td class="wide">{x.type === "agent_run" ? fmtCost(x.cost_usd) : ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
