export function Tasks() {
  return <div class="card">TODO</div>;
}
