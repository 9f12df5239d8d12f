import "@xterm/xterm/css/xterm.css";
import "./styles.css";
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, setUnauthenticatedHandler } from "./api";
import { startEvents, stopEvents, useEventsUp } from "./events";
import { match, navigate, useLocation } from "./router";
import { Link } from "./ui";
import { Login } from "./pages/Login";
import { Dashboard } from "./pages/Dashboard";
import { Terminals } from "./pages/Terminals";
import { Agents } from "./pages/Agents";
import { Tasks } from "./pages/Tasks";
import { TaskDetail } from "./pages/TaskDetail";
import { ExecutionDetail } from "./pages/ExecutionDetail";
import { Files } from "./pages/Files";
import { Executions } from "./pages/Executions";
import { NotFound } from "./pages/NotFound";
import { useTitleCount } from "./components/Attention";
import { NotifyControl } from "./components/NotifyControl";
import { registerServiceWorker } from "./push";

type Auth =
  | { state: "checking" }
  | { state: "out"; reason?: string }
  | { state: "in"; scope: string; via: string };

const NAV: [string, string][] = [
  ["/", "Dashboard"],
  ["/terminals", "Terminals"],
  ["/agents", "Agents"],
  ["/tasks", "Tasks"],
  ["/executions", "Executions"],
];

function Shell(props: { scope: string; onLogout?: () => void }) {
  const { path } = useLocation();
  const live = useEventsUp();
  const [menu, setMenu] = useState(false);
  // A monitor token reads health only (docs/security.md): no page it cannot use, no live socket.
  const monitor = props.scope === "monitor";
  useTitleCount(!monitor);
  const nav = monitor ? NAV.slice(0, 1) : NAV;
  let page;
  let m: Record<string, string> | null;
  if (path === "/") page = <Dashboard healthOnly={monitor} />;
  else if (monitor) page = <MonitorOnly />;
  else if (path === "/terminals") page = <Terminals />;
  else if ((m = match("/terminals/:id", path))) page = <Terminals id={m.id} kind="terminal" />;
  else if ((m = match("/agent-sessions/:id", path))) page = <Terminals id={m.id} kind="agent_session" />;
  else if (path === "/agents") page = <Agents />;
  else if ((m = match("/agents/:id", path))) page = <Agents id={m.id} />;
  else if (path === "/tasks") page = <Tasks />;
  else if ((m = match("/tasks/:id", path))) page = <TaskDetail id={m.id} />;
  else if (path === "/executions") page = <Executions />;
  else if ((m = match("/executions/:id", path))) page = <ExecutionDetail id={m.id} />;
  else if (path === "/files") page = <Files />;
  else page = <NotFound />;
  const active = (href: string) => (href === "/" ? path === "/" : path === href || path.startsWith(href + "/"));
  return (
    <div class="shell">
      <header class="topbar">
        <button class="menu-btn" aria-label="menu" onClick={() => setMenu(!menu)}>
          ☰
        </button>
        <Link href="/" class="brand">
          claude-manager
        </Link>
        <nav class={menu ? "nav open" : "nav"} onClick={() => setMenu(false)}>
          {nav.map(([href, label]) => (
            <Link href={href} class={active(href) ? "active" : ""}>
              {label}
            </Link>
          ))}
        </nav>
        {monitor ? null : (
          <span class={live ? "live on" : "live off"} title={live ? "live updates connected" : "live updates reconnecting"}>
            {live ? "live" : "offline"}
          </span>
        )}
        {monitor ? null : <NotifyControl />}
        <span class="scope" title="your access scope">
          {props.scope}
        </span>
        {props.onLogout ? (
          <button class="link" onClick={props.onLogout}>
            Log out
          </button>
        ) : null}
      </header>
      <main class="page">{page}</main>
    </div>
  );
}

function MonitorOnly() {
  return (
    <div class="card">
      <h2>Not with a monitor token</h2>
      <p class="muted">
        A <code>monitor</code> token reads health and metrics only. Log in with an <code>admin</code> token to use{" "}
        <code>{location.pathname}</code>. <Link href="/">Back to health</Link>.
      </p>
    </div>
  );
}

function App() {
  const [auth, setAuth] = useState<Auth>({ state: "checking" });
  // `/api/auth/session` answers 200 either way, so a visitor who is not logged in causes no
  // failed request (and no console error) before the login form.
  const check = () =>
    api.get<{ authenticated: boolean; scope?: string; via?: string }>("/api/auth/session").then(
      (s) =>
        setAuth(s.authenticated ? { state: "in", scope: s.scope ?? "", via: s.via ?? "" } : { state: "out" }),
      (e) => setAuth({ state: "out", reason: (e as Error).message }),
    );
  useEffect(() => {
    setUnauthenticatedHandler(() => setAuth({ state: "out", reason: "Your session ended; log in again." }));
    check();
  }, []);
  useEffect(() => {
    if (auth.state === "in" && auth.scope !== "monitor") startEvents();
    else stopEvents();
  }, [auth.state]);
  if (auth.state === "checking") return <div class="center muted">Loading…</div>;
  if (auth.state === "out") return <Login reason={auth.reason} onLoggedIn={check} />;
  const logout = async () => {
    // The pages and the events socket go first: a refetch they started while the logout was
    // on its way would meet a 401 (a failed request in the console) for nothing.
    stopEvents();
    setAuth({ state: "out" });
    navigate("/", true);
    try {
      await api.post("/api/auth/logout");
    } catch {
      /* the cookie may already be gone; the login page is shown either way */
    }
  };
  // With --insecure-no-auth there is no session to end.
  return <Shell scope={auth.scope} onLogout={auth.via === "no_auth" ? undefined : logout} />;
}

const root = document.getElementById("app");
if (root) render(<App />, root);
registerServiceWorker();
