import { useState } from "preact/hooks";
import { api } from "../api";
import { ErrorBanner, useAction } from "../ui";

/** Logs in with an access token; the server answers with an HttpOnly session cookie. */
export function Login(props: { reason?: string; onLoggedIn: () => void }) {
  const [token, setToken] = useState("");
  const { busy, error, act } = useAction();
  const submit = async (e: Event) => {
    e.preventDefault();
    await act(async () => {
      await api.post("/api/auth/login", { token: token.trim() });
      setToken("");
      props.onLoggedIn();
    });
  };
  return (
    <div class="login">
      <form class="card" onSubmit={submit}>
        <h1>claude-manager</h1>
        {props.reason ? <p class="muted">{props.reason}</p> : null}
        <label class="field">
          <span class="label">Access token</span>
          <input
            name="token"
            type="password"
            autocomplete="current-password"
            placeholder="cmt_…"
            value={token}
            onInput={(e) => setToken(e.currentTarget.value)}
            autofocus
            required
          />
          <span class="hint">
            Printed once at first start, or create one with <code>claude-manager token create</code>.
          </span>
        </label>
        <ErrorBanner error={error} />
        <button type="submit" class="primary" disabled={busy || !token.trim()}>
          {busy ? "Logging in…" : "Log in"}
        </button>
      </form>
    </div>
  );
}
