// The one table of executions (dashboard, task page): id, type, status, task, times, cost.
// Less important columns carry `wide` and disappear on a phone.

import type { Execution } from "../api";
import { Badge, fmtCost, fmtDuration, fmtTime, Link } from "../ui";

const TYPE_LABEL: Record<Execution["type"], string> = {
  terminal: "terminal",
  agent_session: "agent session",
  agent_run: "agent run",
};

export function ExecutionsTable(props: { items: Execution[]; empty: string; showTask?: boolean }) {
  if (!props.items.length) return <p class="muted">{props.empty}</p>;
  return (
    <div class="table-wrap">
      <table class="executions">
        <thead>
          <tr>
            <th>#</th>
            <th>type</th>
            <th>status</th>
            {props.showTask ? <th class="wide">task</th> : null}
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
              <td>{TYPE_LABEL[x.type] ?? x.type}</td>
              <td>
                <Badge status={x.status} />
              </td>
              {props.showTask ? (
                <td class="wide">{x.task_id ? <Link href={`/tasks/${x.task_id}`}>task {x.task_id}</Link> : "—"}</td>
              ) : null}
              <td class="wide">{fmtTime(x.created_at)}</td>
              <td>{x.started_at ? fmtDuration(x.started_at, x.finished_at) : "—"}</td>
              <td class="wide">{x.type === "agent_run" ? fmtCost(x.cost_usd) : ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
