// What every WebSocket of the page (live events, a terminal, a run's events) does the same way:
// reconnect backoff, and closing without a console error.

/** Reconnects wait this long at most. */
const BACKOFF_MAX_MS = 10_000;

/** The wait before reconnect number `attempt` (0, 1, …): `firstMs` doubling, capped at 10 s. */
export function backoffMs(attempt: number, firstMs: number): number {
  return Math.min(BACKOFF_MAX_MS, firstMs * 2 ** attempt);
}

/**
 * Closes a socket (code 1000) and stops its handlers. One still connecting is closed as soon as
 * it opens: closing it earlier makes Chromium log "closed before the connection is established".
 */
export function closeQuietly(ws: WebSocket) {
  ws.onmessage = null;
  ws.onclose = null;
  if (ws.readyState === WebSocket.CONNECTING) ws.onopen = () => ws.close(1000);
  else {
    ws.onopen = null;
    ws.close(1000);
  }
}
