import { Link } from "../ui";

export function NotFound() {
  return (
    <div class="card">
      <h2>Page not found</h2>
      <p class="muted">
        Nothing lives at <code>{location.pathname}</code>. <Link href="/">Back to the dashboard</Link>.
      </p>
    </div>
  );
}
