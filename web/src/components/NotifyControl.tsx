// The header's notifications control: whether this browser gets the server's notifications
// (an agent needs you, a run ended), a button to turn them on or off, and a test.
// Permission is asked only from the button, never on load.

import { useEffect, useState } from "preact/hooks";
import { disablePush, enablePush, pushState, sendTestPush, type PushState } from "../push";
import { ErrorBanner } from "../ui";

const WHY: Record<PushState, string> = {
  unsupported: "This browser cannot receive push notifications.",
  insecure: "Push notifications need HTTPS (or localhost). See docs/notifications.md.",
  denied: "Notifications are blocked for this site: allow them in the browser's site settings.",
  off: "Get a notification on this device when an agent needs you or a run ends.",
  on: "This device gets a notification when an agent needs you or a run ends.",
};

export function NotifyControl() {
  const [open, setOpen] = useState(false);
  const [state, setState] = useState<PushState | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [note, setNote] = useState("");
  useEffect(() => {
    if (open) pushState().then(setState, setError);
  }, [open]);
  const act = async (f: () => Promise<PushState | void>) => {
    setBusy(true);
    setError(null);
    setNote("");
    try {
      const s = await f();
      if (s) setState(s);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const test = async () => {
    const r = await sendTestPush();
    setNote(`Test sent to ${r.subscriptions} device${r.subscriptions === 1 ? "" : "s"}${r.webhook ? " and the webhook" : ""}.`);
  };
  return (
    <span class="notify">
      <button class="link" aria-expanded={open} aria-label="notifications" title="notifications" onClick={() => setOpen(!open)}>
        <svg class="bell" viewBox="0 0 24 24" width="18" height="18" aria-hidden="true">
          <path d="M12 3a6 6 0 0 0-6 6v3.5L4.5 16h15L18 12.5V9a6 6 0 0 0-6-6zM9.5 18.5a2.5 2.5 0 0 0 5 0" />
        </svg>
      </button>
      {open ? (
        <div class="notify-panel card" role="dialog" aria-label="Notifications">
          <strong>Notifications</strong>
          <p class="muted small">{state ? WHY[state] : "…"}</p>
          <div class="row">
            {state === "off" ? (
              <button disabled={busy} onClick={() => act(enablePush)}>
                Turn on for this device
              </button>
            ) : null}
            {state === "on" ? (
              <>
                <button disabled={busy} onClick={() => act(test)}>
                  Send a test
                </button>
                <button class="link" disabled={busy} onClick={() => act(disablePush)}>
                  Turn off
                </button>
              </>
            ) : null}
          </div>
          {note ? <p class="small">{note}</p> : null}
          {error ? <ErrorBanner error={error} onClose={() => setError(null)} /> : null}
        </div>
      ) : null}
    </span>
  );
}
