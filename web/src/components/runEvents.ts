// The event stream of one headless run: WS /api/executions/{id}/events?since=SEQ replays the
// stored events after SEQ, then streams new ones, then sends {"type":"end"} and closes 1000
// (at once for a finished run). On any other close we reconnect from the last seq we hold, so
// nothing is lost or shown twice; 4404 means the execution is not a run (nothing to show).

import { useEffect, useState } from "preact/hooks";
import { wsUrl, type RunEvent } from "../api";
import { backoffMs, closeQuietly } from "../ws";

const CLOSE_NORMAL = 1000;
const CLOSE_NOT_A_RUN = 4404;
/** Reconnect backoff starts here (then doubles, up to 10 s), as the shared events socket does. */
const RETRY_FIRST_MS = 500;
/** Events arriving within this window are rendered together (one frame at 60 Hz is ~16 ms). */
const FLUSH_MS = 30;

export type StreamState = "connecting" | "live" | "ended" | "reconnecting" | "not_a_run";

export function useRunEvents(executionId: string) {
  const [events, setEvents] = useState<RunEvent[]>([]);
  const [state, setState] = useState<StreamState>("connecting");

  useEffect(() => {
    let last = 0;
    let retry = 0;
    let done = false;
    let socket: WebSocket | null = null;
    let timer: number | undefined;
    let batch: RunEvent[] = [];
    let flushTimer: number | undefined;
    const flush = () => {
      window.clearTimeout(flushTimer);
      flushTimer = undefined;
      if (!batch.length) return;
      const add = batch;
      batch = [];
      setEvents((prev) => [...prev, ...add]);
    };
    setEvents([]);
    setState("connecting");

    const connect = () => {
      const ws = new WebSocket(wsUrl(`/api/executions/${encodeURIComponent(executionId)}/events?since=${last}`));
      socket = ws;
      ws.onopen = () => {
        retry = 0;
        setState("live");
      };
      ws.onmessage = (m) => {
        if (typeof m.data !== "string") return;
        let msg: { type: string; data?: RunEvent; status?: string };
        try {
          msg = JSON.parse(m.data);
        } catch {
          return;
        }
        if (msg.type === "event" && msg.data && msg.data.seq > last) {
          last = msg.data.seq;
          batch.push(msg.data);
          // A replay is hundreds of frames at once: render them together, not one by one.
          if (flushTimer === undefined) flushTimer = window.setTimeout(flush, FLUSH_MS);
        } else if (msg.type === "end") {
          flush();
          done = true;
          setState("ended");
        }
      };
      ws.onclose = (c) => {
        socket = null;
        if (done) return;
        flush();
        if (c.code === CLOSE_NOT_A_RUN) {
          done = true;
          setState("not_a_run");
          return;
        }
        // A normal close without "end" still means the server is finished with this run.
        if (c.code === CLOSE_NORMAL) {
          done = true;
          setState("ended");
          return;
        }
        setState("reconnecting");
        timer = window.setTimeout(connect, backoffMs(retry++, RETRY_FIRST_MS));
      };
    };
    connect();
    return () => {
      done = true;
      window.clearTimeout(timer);
      window.clearTimeout(flushTimer);
      if (socket) closeQuietly(socket);
    };
  }, [executionId]);

  return { events, state };
}
