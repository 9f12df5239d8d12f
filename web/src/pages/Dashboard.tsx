export function Dashboard() {
  return <div class="card">TODO</div>;
}
