// Small shared pieces: links, error banners, status badges, times, and a data-loading hook.

import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ApiError } from "./api";
import { navigate } from "./router";

export function Link(props: { href: string; children: ComponentChildren; class?: string; title?: string }) {
  const onClick = (e: MouseEvent) => {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(props.href);
  };
  return (
    <a href={props.href} class={props.class} title={props.title} onClick={onClick}>
      {props.children}
    </a>
  );
}

/** Shows an API (or any) error with its message and code; nothing when `error` is null. */
export function ErrorBanner(props: { error: unknown; onClose?: () => void }) {
  if (!props.error) return null;
  const e = props.error;
  const msg = e instanceof Error ? e.message : String(e);
  const code = e instanceof ApiError ? e.code : undefined;
  return (
    <div class="error" role="alert">
      <span>
        {msg}
        {code ? <code class="code">{code}</code> : null}
      </span>
      {props.onClose ? (
        <button class="link" onClick={props.onClose} aria-label="dismiss">
          ×
        </button>
      ) : null}
    </div>
  );
}

export function Badge(props: { status: string }) {
  return <span class={`badge st-${props.status}`}>{props.status}</span>;
}

export function fmtTime(s: string | null | undefined): string {
  if (!s) return "—";
  const d = new Date(s);
  if (isNaN(d.getTime())) return s;
  return d.toLocaleString();
}

/** "1 turn", "2 turns", "1 agent session"; `many` when adding an "s" is wrong. */
export function plural(n: number, one: string, many = one + "s"): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** "just now", "5 min ago", "3 h ago", "yesterday", "4 days ago", then the date. */
export function fmtAgo(s: string | null | undefined, now = Date.now()): string {
  if (!s) return "—";
  const t = new Date(s).getTime();
  if (isNaN(t)) return s;
  const secs = Math.round((now - t) / 1000);
  if (secs < 45) return secs < -45 ? new Date(t).toLocaleString() : "just now";
  const mins = Math.round(secs / 60);
  if (mins < 60) return `${mins} min ago`;
  const hours = Math.round(mins / 60);
  if (hours < 24) return `${hours} h ago`;
  const days = Math.round(hours / 24);
  if (days === 1) return "yesterday";
  if (days < 7) return `${days} days ago`;
  return new Date(t).toLocaleDateString();
}

/** A time shown relative ("5 min ago"), the exact one on hover; ticks once a minute. */
export function Ago(props: { at: string | null | undefined }) {
  useTick(true, 60_000);
  if (!props.at) return <span>—</span>;
  return (
    <time dateTime={props.at} title={fmtTime(props.at)}>
      {fmtAgo(props.at)}
    </time>
  );
}

export function fmtDuration(from: string | null | undefined, to?: string | null): string {
  if (!from) return "—";
  const a = new Date(from).getTime();
  const b = to ? new Date(to).getTime() : Date.now();
  if (isNaN(a) || isNaN(b)) return "—";
  let s = Math.max(0, Math.round((b - a) / 1000));
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return h ? `${h}h ${m}m` : m ? `${m}m ${s}s` : `${s}s`;
}

/**
 * Loads with `fetcher` when `deps` change; `reload()` refetches (e.g. on a live event).
 * Keeps the last good data while reloading, so live updates do not flicker.
 */
export function useLoad<T>(fetcher: () => Promise<T>, deps: unknown[]) {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const seq = useRef(0);
  const f = useRef(fetcher);
  f.current = fetcher;
  const reload = useCallback(() => {
    const n = ++seq.current;
    setLoading(true);
    f.current().then(
      (d) => {
        if (n !== seq.current) return;
        setData(d);
        setError(null);
        setLoading(false);
      },
      (e) => {
        if (n !== seq.current) return;
        setError(e);
        setLoading(false);
      },
    );
  }, []);
  useEffect(reload, deps);
  return { data, error, loading, reload, setData };
}

/** The page's subject was deleted (here or elsewhere) while it was open. */
export function Gone(props: { what: string; back: string }) {
  return (
    <div class="card">
      <p>This {props.what} was deleted.</p>
      <Link href={props.back}>← back to the list</Link>
    </div>
  );
}

/** A form's footer: its error (if any), then submit and cancel. */
export function FormActions(props: { error: unknown; busy: boolean; submit: string; onCancel: () => void }) {
  return (
    <>
      <ErrorBanner error={props.error} />
      <div class="row">
        <button type="submit" class="primary" disabled={props.busy}>
          {props.busy ? "Saving…" : props.submit}
        </button>
        <button type="button" onClick={props.onCancel}>
          Cancel
        </button>
      </div>
    </>
  );
}

/** A form field with its label; `invalid` marks the one the server's error named. */
export function Field(props: { label: string; children: ComponentChildren; hint?: string; invalid?: boolean }) {
  return (
    <label class={props.invalid ? "field invalid" : "field"}>
      <span class="label">{props.label}</span>
      {props.children}
      {props.hint ? <span class="hint">{props.hint}</span> : null}
    </label>
  );
}

/**
 * Whether the API error `err` is about the form field `name`: the server names nested fields
 * `restart.max_restarts`, `command[2]` or `env.HOME`, and those count for their parent too.
 */
export function fieldIs(err: unknown, name: string): boolean {
  const f = err instanceof ApiError ? err.field : undefined;
  if (!f) return false;
  return f === name || f.startsWith(name + ".") || f.startsWith(name + "[");
}

/** A destructive action asked twice in the page itself (no `confirm()` dialog to block tests). */
export function ConfirmButton(props: { label: string; confirm: string; onConfirm: () => void; disabled?: boolean }) {
  const [asking, setAsking] = useState(false);
  if (!asking)
    return (
      <button class="danger" disabled={props.disabled} onClick={() => setAsking(true)}>
        {props.label}
      </button>
    );
  return (
    <span class="row confirm">
      <span>{props.confirm}</span>
      <button
        class="danger"
        onClick={() => {
          setAsking(false);
          props.onConfirm();
        }}
      >
        Yes, {props.label.toLowerCase()}
      </button>
      <button onClick={() => setAsking(false)}>No</button>
    </span>
  );
}

/** Re-renders every `ms` while `active`, so running durations tick without events. */
export function useTick(active: boolean, ms = 1000) {
  const [, setN] = useState(0);
  useEffect(() => {
    if (!active) return;
    const t = window.setInterval(() => setN((n) => n + 1), ms);
    return () => window.clearInterval(t);
  }, [active, ms]);
}

/** US dollars as agents report them: small amounts keep four decimals ("$0.0123"). */
export function fmtCost(usd: number | null | undefined): string {
  if (usd === null || usd === undefined) return "—";
  return `$${usd.toFixed(usd < 1 ? 4 : 2)}`;
}

/** Seconds as "3d 4h", "2h 5m", "4m 10s" or "12s". */
export function fmtSecs(total: number): string {
  const d = Math.floor(total / 86400);
  const h = Math.floor((total % 86400) / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = Math.floor(total % 60);
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s}s`;
  return `${s}s`;
}

/** The value of the input, textarea or select an event came from. */
export const val = (e: Event) => (e.currentTarget as HTMLInputElement).value;

/**
 * One user action at a time (a form submit, a button): `busy` while `act(f)` runs, and its
 * failure kept in `error` for an `ErrorBanner` (cleared when the next action starts).
 */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const act = useCallback(async (f: () => Promise<void>) => {
    setError(null);
    setBusy(true);
    try {
      await f();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }, []);
  return { busy, error, setError, act };
}
