export function Agents(_props: { id?: string }) {
  return <div class="card">TODO</div>;
}
