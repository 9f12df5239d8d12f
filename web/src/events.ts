// One shared WebSocket to /api/events for the whole page. Pages subscribe with `useEvents`; the
// socket reconnects with backoff, and every (re)connect is announced as a synthetic
// `{"type":"connected"}` event so pages refetch what they may have missed while it was down.

import { useEffect, useRef, useState } from "preact/hooks";
import { wsUrl } from "./api";
import { backoffMs, closeQuietly } from "./ws";

export interface ServerEvent {
  type: string;
  data?: any;
  missed?: number;
}

type Handler = (e: ServerEvent) => void;

const handlers = new Set<Handler>();
const stateListeners = new Set<(up: boolean) => void>();
let socket: WebSocket | null = null;
let up = false;
let retry = 0;
let timer: number | undefined;
let pinger: number | undefined;
let stopped = true;

function setUp(v: boolean) {
  up = v;
  stateListeners.forEach((l) => l(v));
}

function connect() {
  if (stopped || socket) return;
  const ws = new WebSocket(wsUrl("/api/events"));
  socket = ws;
  ws.onopen = () => {
    retry = 0;
    setUp(true);
    handlers.forEach((h) => h({ type: "connected" }));
    pinger = window.setInterval(() => {
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "ping" }));
    }, 30_000);
  };
  ws.onmessage = (m) => {
    if (typeof m.data !== "string") return;
    let ev: ServerEvent;
    try {
      ev = JSON.parse(m.data);
    } catch {
      return;
    }
    if (ev.type === "pong") return;
    // A lagged subscriber missed events: pages treat it like a reconnect and refetch.
    if (ev.type === "lagged") ev = { type: "connected", missed: ev.missed };
    handlers.forEach((h) => h(ev));
  };
  ws.onclose = () => {
    window.clearInterval(pinger);
    socket = null;
    setUp(false);
    if (stopped) return;
    const delay = backoffMs(retry++, 500);
    timer = window.setTimeout(connect, delay);
  };
}

/** Starts the shared socket (after login). */
export function startEvents() {
  stopped = false;
  connect();
}

/** Closes it (on logout). */
export function stopEvents() {
  stopped = true;
  window.clearTimeout(timer);
  window.clearInterval(pinger);
  if (socket) closeQuietly(socket);
  socket = null;
  setUp(false);
}

/** Calls `handler` for every server event (and `connected` after each (re)connect). */
export function useEvents(handler: Handler) {
  const ref = useRef(handler);
  ref.current = handler;
  useEffect(() => {
    const h: Handler = (e) => ref.current(e);
    handlers.add(h);
    return () => {
      handlers.delete(h);
    };
  }, []);
}

/** Whether the live-events socket is connected. */
export function useEventsUp(): boolean {
  const [v, setV] = useState(up);
  useEffect(() => {
    stateListeners.add(setV);
    return () => {
      stateListeners.delete(setV);
    };
  }, []);
  return v;
}
