export function TaskDetail(props: { id: string }) {
  return <div class="card">TODO {props.id}</div>;
}
