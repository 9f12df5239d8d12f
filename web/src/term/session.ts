// One viewer's connection to a session's terminal WebSocket (docs/terminals.md, "WebSocket"),
// framework-free so its rules can be read in one place:
//
// - It tracks the absolute offset of the next output byte (`attached.offset` + every binary byte
//   since), so a reconnect asks for `since=next`: no byte is shown twice and none is skipped.
//   The first attach of a page sends no `since`: the server sends a `snapshot` of the screen
//   (one binary frame that is not output: the screen is reset and drawn from it), then output
//   from `snapshot.offset`. The same happens when `since` has left the ring or this view fell
//   behind by more than it.
// - It reconnects with backoff after an unexpected close, never after `exit`, after 4404 (the
//   session is gone), or once disposed.
// - Input typed while the socket is down is queued (bounded) and sent in order after reattach.
// - A read-only (`mode=ro`) viewer never sends input or resize.

import { query, wsUrl } from "../api";
import { backoffMs, closeQuietly } from "../ws";

export type Mode = "rw" | "ro";

export type ConnState =
  | { kind: "connecting" }
  | { kind: "live" }
  | { kind: "reconnecting"; attempt: number; delayMs: number; reason: string }
  | { kind: "exited"; code: number | null; signal: number | null }
  | { kind: "gone"; reason: string }
  | { kind: "closed" };

/** What the client tells its owner (the terminal view). */
export interface SessionEvents {
  /** Output bytes, in order; may split UTF-8 sequences (xterm joins them). */
  output(bytes: Uint8Array): void;
  /** The stream restarts at a different offset than expected: clear the screen. */
  reset(): void;
  /** The screen as the server has it: reset the terminal to this size and write the bytes. */
  snapshot(bytes: Uint8Array, cols: number, rows: number): void;
  /** Something the user should see: `terminal` notices are about output, `status` about input. */
  notice(text: string, where: "terminal" | "status"): void;
  /**
   * A (re)attach succeeded; the PTY currently has this size. `holder`: this view holds the
   * session's size (or nobody does, so it may take it).
   */
  attached(cols: number, rows: number, holder: boolean, by: string | null): void;
  /** The session's size changed; `mine`: it is this view's size now (it typed or resized). */
  resize(cols: number, rows: number, mine: boolean, by: string | null): void;
  state(s: ConnState): void;
  /** A `{"type":"error"}` message from the server (e.g. `read_only`). */
  error(code: string, message: string): void;
}

/** The server closes with this when the session does not exist (docs/terminals.md). */
const CLOSE_NO_SESSION = 4404;
/** The server closes viewers with this when it reloads in place (docs/operations.md). */
const CLOSE_SERVICE_RESTART = 1012;
const CLOSE_REASONS: Record<number, string> = {
  1001: "the server is restarting",
  1011: "the session's actor failed",
  4008: "this view stopped reading",
  4429: "too many viewers on this session",
};
/** Bound on input kept while disconnected; a paste beyond it is dropped, with a notice. */
const INPUT_QUEUE_MAX_BYTES = 64 * 1024;
/** The server caps one client message at 64 KiB; input is sent in pieces well under it. */
const INPUT_FRAME_MAX_BYTES = 32 * 1024;
/** Keeps idle proxies from closing the socket. */
const PING_INTERVAL_MS = 25_000;
/** Reconnect backoff starts here (then doubles, up to 10 s): a terminal should be back fast. */
const BACKOFF_INITIAL_MS = 250;

interface ServerText {
  type: string;
  offset?: number;
  end?: number;
  cols?: number;
  rows?: number;
  truncated?: boolean;
  viewer?: number;
  size_by?: number | null;
  /** The device of the viewer that holds the size ("Chrome on Android"). */
  size_by_client?: string;
  by?: number;
  by_client?: string;
  code?: number | string | null;
  signal?: number | null;
  message?: string;
}

export class SessionClient {
  private ws: WebSocket | null = null;
  /** Absolute offset of the next output byte; null until the first attach. */
  private next: number | null = null;
  private attachedNow = false;
  /** This view's id on the server (from `attached`): `resize.by` names it when it holds the size. */
  private viewer: number | null = null;
  /** Set by a `snapshot` message: the next binary frame is the screen at this size. */
  private snapshotNext: { cols: number; rows: number } | null = null;
  private queue: Uint8Array[] = [];
  private queuedBytes = 0;
  private attempt = 0;
  private retryTimer: number | undefined;
  private pingTimer: number | undefined;
  /** Set by `exit`, 4404 or dispose: nothing reconnects any more. */
  private finished = false;
  /** Test hook: a dropped connection waits for `release()` before reconnecting. */
  private held = false;
  private reconnectPending = false;
  private current: ConnState = { kind: "connecting" };

  constructor(
    private readonly path: string,
    private mode: Mode,
    private readonly ev: SessionEvents,
  ) {}

  get state(): ConnState {
    return this.current;
  }

  /** Absolute offset of the next output byte (null before the first attach). */
  get offset(): number | null {
    return this.next;
  }

  get readOnly(): boolean {
    return this.mode === "ro";
  }

  start() {
    this.connect();
  }

  /** Sends input (rw only); queued while disconnected. */
  send(bytes: Uint8Array) {
    if (this.mode === "ro" || this.finished || bytes.length === 0) return;
    if (this.attachedNow && this.ws?.readyState === WebSocket.OPEN) {
      this.sendNow(bytes);
      return;
    }
    if (this.queuedBytes + bytes.length > INPUT_QUEUE_MAX_BYTES) {
      this.ev.notice(
        `not connected: ${bytes.length} bytes of input dropped (at most ${INPUT_QUEUE_MAX_BYTES / 1024} KiB wait for the reconnect)`,
        "status",
      );
      return;
    }
    this.queue.push(bytes);
    this.queuedBytes += bytes.length;
  }

  /**
   * Tells the session this view's size (rw and attached only; the view calls it again after each
   * attach). `take`: make it the session's size now ("fit to my window", or this view holds the
   * size); otherwise the server keeps it for when this view types.
   */
  resize(cols: number, rows: number, take: boolean) {
    if (this.mode === "ro" || !this.attachedNow) return;
    this.sendText({ type: "resize", cols, rows, take });
  }

  /** Switches between rw and ro by reattaching at the current offset (the screen stays). */
  setMode(mode: Mode) {
    if (mode === this.mode) return;
    this.mode = mode;
    if (mode === "ro") this.clearQueue();
    if (this.finished) return;
    this.dropSocket();
    window.clearTimeout(this.retryTimer);
    this.attempt = 0;
    this.connect();
  }

  /** Closes for good (unmount, page close). */
  dispose() {
    this.finished = true;
    window.clearTimeout(this.retryTimer);
    this.dropSocket();
    this.setState({ kind: "closed" });
  }

  /** Test hook: closes the socket as a network failure would; `hold` delays the reconnect. */
  dropConnection(hold = false) {
    this.held = hold;
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.close(4000, "dropped on purpose");
  }

  /** Test hook: lets a held reconnect proceed. */
  release() {
    this.held = false;
    if (this.reconnectPending) this.scheduleReconnect("released");
  }

  private connect(quiet = false) {
    this.reconnectPending = false;
    if (this.finished) return;
    const q = query({ since: this.next ?? undefined, mode: this.mode });
    const ws = new WebSocket(wsUrl(this.path + q));
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.attachedNow = false;
    if (!quiet && this.current.kind !== "reconnecting") this.setState({ kind: "connecting" });
    ws.onopen = () => {
      this.pingTimer = window.setInterval(() => this.sendText({ type: "ping" }), PING_INTERVAL_MS);
    };
    ws.onmessage = (m: MessageEvent<string | ArrayBuffer>) => {
      if (typeof m.data === "string") this.onText(m.data);
      else this.onBytes(new Uint8Array(m.data));
    };
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.onClose(e.code);
    };
  }

  private onText(text: string) {
    let msg: ServerText;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    switch (msg.type) {
      case "attached":
        return this.onAttached(msg);
      case "resize":
        if (msg.cols && msg.rows) {
          this.ev.resize(msg.cols, msg.rows, msg.by !== undefined && msg.by === this.viewer, msg.by_client ?? null);
        }
        return;
      case "exit":
        this.finished = true;
        this.clearQueue();
        this.setState({ kind: "exited", code: numOrNull(msg.code), signal: numOrNull(msg.signal) });
        return;
      case "resync":
        return this.onResync(msg.offset ?? 0);
      case "snapshot":
        this.snapshotNext = { cols: msg.cols ?? 80, rows: msg.rows ?? 24 };
        this.next = msg.offset ?? 0;
        return;
      case "error":
        this.ev.error(String(msg.code ?? "error"), msg.message ?? "");
        return;
      default:
        return; // pong, and anything newer than this client
    }
  }

  private onAttached(msg: ServerText) {
    const offset = msg.offset ?? 0;
    if (this.next !== null && msg.truncated && offset > this.next) {
      this.ev.notice(`${offset - this.next} bytes of output were lost while disconnected`, "terminal");
    }
    this.next = offset;
    this.viewer = msg.viewer ?? null;
    this.attachedNow = true;
    this.attempt = 0;
    this.setState({ kind: "live" });
    // Nobody holds the size when neither a viewer nor a device is named; a holder that left
    // (`size_by` null, `size_by_client` its device) keeps it until it comes back or one types.
    const holder = (msg.size_by == null && msg.size_by_client == null) || msg.size_by === msg.viewer;
    this.ev.attached(msg.cols ?? 80, msg.rows ?? 24, holder, msg.size_by_client ?? null);
    this.flushQueue();
  }

  /**
   * The server resends from `offset` after this view lagged. It normally equals `next` (the
   * stream simply continues); if not, what is on screen no longer matches the stream, so clear.
   */
  private onResync(offset: number) {
    if (offset !== this.next) this.ev.reset();
    this.next = offset;
  }

  private onBytes(bytes: Uint8Array) {
    if (this.next === null) return; // bytes always follow `attached`
    const snap = this.snapshotNext;
    if (snap) {
      // The frame after `snapshot` is the screen, not output: it moves no offset.
      this.snapshotNext = null;
      this.ev.snapshot(bytes, snap.cols, snap.rows);
      return;
    }
    this.next += bytes.length;
    this.ev.output(bytes);
  }

  private onClose(code: number) {
    window.clearInterval(this.pingTimer);
    const wasAttached = this.attachedNow;
    this.attachedNow = false;
    if (this.finished) return;
    if (code === CLOSE_SERVICE_RESTART && wasAttached && !this.held) {
      // A reload: the next image takes the new connection from the listening socket, so come
      // back at once, with `since`, showing nothing (no error, no replay of what is on screen).
      this.connect(true);
      return;
    }
    if (code === CLOSE_NO_SESSION) {
      this.finished = true;
      this.clearQueue();
      this.setState({ kind: "gone", reason: "the session no longer exists" });
      return;
    }
    this.reconnectPending = true;
    if (!this.held) this.scheduleReconnect(CLOSE_REASONS[code] ?? "the connection was lost");
    else this.setState({ kind: "reconnecting", attempt: this.attempt, delayMs: 0, reason: "held" });
  }

  private scheduleReconnect(reason: string) {
    const delayMs = backoffMs(this.attempt, BACKOFF_INITIAL_MS);
    this.attempt++;
    this.setState({ kind: "reconnecting", attempt: this.attempt, delayMs, reason });
    window.clearTimeout(this.retryTimer);
    this.retryTimer = window.setTimeout(() => this.connect(), delayMs);
  }

  private flushQueue() {
    const pending = this.queue;
    this.clearQueue();
    for (const b of pending) this.sendNow(b);
  }

  private clearQueue() {
    this.queue = [];
    this.queuedBytes = 0;
  }

  private sendNow(bytes: Uint8Array) {
    for (let i = 0; i < bytes.length; i += INPUT_FRAME_MAX_BYTES) {
      this.ws?.send(bytes.subarray(i, i + INPUT_FRAME_MAX_BYTES));
    }
  }

  private sendText(msg: object) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  /** Forgets the socket without reacting to its close; never closes one still connecting. */
  private dropSocket() {
    const ws = this.ws;
    this.ws = null;
    this.attachedNow = false;
    window.clearInterval(this.pingTimer);
    if (ws) closeQuietly(ws);
  }

  private setState(s: ConnState) {
    this.current = s;
    this.ev.state(s);
  }
}

function numOrNull(v: unknown): number | null {
  return typeof v === "number" ? v : null;
}
