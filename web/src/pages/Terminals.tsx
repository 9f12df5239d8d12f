export function Terminals(props: { id?: string; kind?: "terminal" | "agent" }) {
  return <div class="card">TODO {props.id} {props.kind}</div>;
}
