// One session on screen: xterm.js wired to a SessionClient, with the toolbar (connection state,
// read-only, copy, find, settings), the phone key bar, and fitting to the visible viewport. A fresh mount is
// a fresh terminal that attaches without `since` (the server replays from a safe point), so a page
// reload shows the previous output once.

import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { copyText } from "./clipboard";
import { FindBar } from "./FindBar";
import { KeyBar } from "./KeyBar";
import { barKeyInput, withCtrl, type BarKey } from "./keys";
import { themeOf, usePrefs } from "./prefs";
import { TermSettings } from "./TermSettings";
import { type ConnState, type Mode, SessionClient } from "./session";
import { binaryBytes, dataBytes, openXterm, type XtermHandle } from "./xterm";
import { exitText } from "./api";
import "./term.css";

/** Resize bursts (dragging a window, rotating a phone) end in one PTY resize. */
const FIT_DEBOUNCE_MS = 80;
const FLASH_MS = 4000;
const NARROW = "(max-width: 700px)";
/** A phone on its side: every row counts (see `.term-page` in term.css). */
const SHORT = "(max-height: 500px)";

/** The font size for this screen when the user has not picked one. */
const screenFontSize = () => (matchMedia(SHORT).matches ? 11 : matchMedia(NARROW).matches ? 12 : 14);

/** What browser tests may poke (see web/tests/terminal.test.mjs). */
export interface TermTestHook {
  dropConnection(hold?: boolean): void;
  release(): void;
  state(): ConnState["kind"];
  offset(): number | null;
}

declare global {
  interface Window {
    __cmTerm?: TermTestHook;
    __cmTestHooks?: boolean;
  }
}

export function TermView(props: {
  wsPath: string;
  mode: Mode;
  onModeChange: (m: Mode) => void;
  /** Called when the session's child has ended (the page refreshes its status). */
  onExit?: () => void;
  /** Called with the window title the program sets (from the snapshot on attach, then live);
   *  `null` when it clears it. */
  onTitle?: (title: string | null) => void;
  /** Status shown at the start of the toolbar. */
  status?: ComponentChildren;
  /** Buttons shown at its end (Stop). */
  actions?: ComponentChildren;
}) {
  const hostRef = useRef<HTMLDivElement>(null);
  const viewRef = useRef<HTMLDivElement>(null);
  const xt = useRef<XtermHandle | null>(null);
  const client = useRef<SessionClient | null>(null);
  const modeRef = useRef(props.mode);
  modeRef.current = props.mode;
  const onExitRef = useRef(props.onExit);
  onExitRef.current = props.onExit;
  const onTitleRef = useRef(props.onTitle);
  onTitleRef.current = props.onTitle;
  const ctrlRef = useRef(false);
  const [ctrl, setCtrlState] = useState(false);
  const [conn, setConn] = useState<ConnState>({ kind: "connecting" });
  const [notice, setNotice] = useState<string | null>(null);
  const [findOpen, setFindOpen] = useState(false);
  const [settingsOpen, setSettingsOpen] = useState(false);
  const [prefs, setPrefs] = usePrefs();
  const prefsRef = useRef(prefs);
  prefsRef.current = prefs;
  /** Refits after a font change (set by the effect that opened the terminal). */
  const refit = useRef<() => void>(() => {});
  /** Makes the session this view's size ("Fit to my window"). */
  const fitMine = useRef<() => void>(() => {});
  /** Whether this view holds the session's size (the last rw view to type or resize does). */
  const holderRef = useRef(true);
  const [holder, setHolderState] = useState(true);
  /** The PTY's size and the device of the viewer that set it, when known. */
  const [ptySize, setPtySize] = useState<{ cols: number; rows: number; by: string | null } | null>(null);
  const setHolder = (v: boolean) => {
    holderRef.current = v;
    setHolderState(v);
  };
  const flashTimer = useRef<number | undefined>(undefined);

  const setCtrl = (v: boolean) => {
    ctrlRef.current = v;
    setCtrlState(v);
  };
  const flash = (text: string) => {
    setNotice(text);
    window.clearTimeout(flashTimer.current);
    flashTimer.current = window.setTimeout(() => setNotice(null), FLASH_MS);
  };

  useEffect(() => {
    const host = hostRef.current!;
    const handle = openXterm(host, prefsRef.current.fontSize ?? screenFontSize(), themeOf(prefsRef.current));
    xt.current = handle;
    const { term, fit } = handle;
    /** The PTY's size as last known (attach, a resize we sent, or another viewer's). */
    const pty = { cols: term.cols, rows: term.rows };
    term.onTitleChange((title) => onTitleRef.current?.(title.trim() || null));

    const c = new SessionClient(props.wsPath, modeRef.current, {
      output: (bytes) => term.write(bytes),
      reset: () => inStreamOrder(() => term.reset()),
      snapshot: (bytes, cols, rows) => {
        // The server's screen, drawn at the size it was taken at, which was the PTY's then; a
        // view that holds the size then fits its box again (a different size reaches the PTY,
        // and the program redraws), any other view stays at it.
        inStreamOrder(() => {
          term.reset();
          pty.cols = cols;
          pty.rows = rows;
          if (term.cols !== cols || term.rows !== rows) term.resize(cols, rows);
        });
        term.write(bytes, () => fitAndReport());
      },
      notice: (text, where) => (where === "terminal" ? term.write(`\r\n\x1b[33m[${text}]\x1b[0m\r\n`) : flash(text)),
      attached: (cols, rows, holder, by) => {
        setPtySize({ cols, rows, by });
        setHolder(holder);
        declared = null;
        inStreamOrder(() => ptyResized(cols, rows));
      },
      resize: (cols, rows, mine, by) => {
        setPtySize({ cols, rows, by });
        setHolder(mine);
        inStreamOrder(() => ptyResized(cols, rows));
      },
      state: (s) => {
        setConn(s);
        if (s.kind === "exited") onExitRef.current?.();
      },
      error: (code, message) => flash(`${message} (${code})`),
    });
    client.current = c;

    /**
     * Runs `fn` once the output written so far is drawn: xterm parses writes later, so a change
     * the stream tells (`attached`, `resize`, `snapshot`) takes effect between the output before
     * it and the output after it, as it did on the PTY. Applied at once, a size came before a
     * snapshot still waiting to be drawn, and the snapshot's scroll region, set for its own
     * size, then held at the new one (vim's redraw scrolled two rows off the top).
     */
    const inStreamOrder = (fn: () => void) => term.write("", fn);
    const ptyResized = (cols: number, rows: number) => {
      pty.cols = cols;
      pty.rows = rows;
      fitAndReport();
    };
    /** The size this view last told the server without taking it. */
    let declared: { cols: number; rows: number } | null = null;
    /**
     * One size per session (docs/terminals.md): the view that holds it fits its box and sends
     * changes; any other view renders at the session's size (the program's output is never
     * re-wrapped) and only tells the server its own size, which the session takes when this
     * view types or the user asks to fit.
     */
    function fitAndReport() {
      if (modeRef.current === "ro") {
        if (term.cols !== pty.cols || term.rows !== pty.rows) term.resize(pty.cols, pty.rows);
        return;
      }
      if (holderRef.current) {
        fit.fit();
        if (term.cols === pty.cols && term.rows === pty.rows) return;
        pty.cols = term.cols;
        pty.rows = term.rows;
        c.resize(term.cols, term.rows, true);
        return;
      }
      if (term.cols !== pty.cols || term.rows !== pty.rows) term.resize(pty.cols, pty.rows);
      const want = fit.proposeDimensions();
      if (!want || (declared && declared.cols === want.cols && declared.rows === want.rows)) return;
      declared = { cols: want.cols, rows: want.rows };
      c.resize(want.cols, want.rows, false);
    }
    fitMine.current = () => {
      const want = fit.proposeDimensions();
      if (want) c.resize(want.cols, want.rows, true);
    };
    let fitTimer: number | undefined;
    const scheduleFit = () => {
      window.clearTimeout(fitTimer);
      fitTimer = window.setTimeout(() => {
        // Rotating a phone changes the screen's default size too (unless the user picked one).
        if (prefsRef.current.fontSize === null) term.options.fontSize = screenFontSize();
        fitAndReport();
      }, FIT_DEBOUNCE_MS);
    };
    refit.current = scheduleFit;
    /** Keeps the view above an on-screen keyboard where the layout viewport does not shrink (iOS). */
    const followViewport = () => {
      const vv = window.visualViewport;
      const view = viewRef.current;
      if (!vv || !view) return;
      const visibleBottom = vv.offsetTop + vv.height;
      view.style.maxHeight = `${Math.max(120, Math.floor(visibleBottom - view.getBoundingClientRect().top))}px`;
      scheduleFit();
    };

    const input = (data: string) => {
      if (ctrlRef.current && data.length === 1) {
        data = withCtrl(data);
        setCtrl(false);
      }
      c.send(dataBytes(data));
    };
    const subs = [term.onData(input), term.onBinary((d) => c.send(binaryBytes(d)))];
    term.options.disableStdin = modeRef.current === "ro";

    fit.fit(); // before attaching, so the replay is drawn at the final width
    followViewport();
    const observer = new ResizeObserver(scheduleFit);
    observer.observe(host);
    window.addEventListener("orientationchange", scheduleFit);
    window.visualViewport?.addEventListener("resize", followViewport);
    window.visualViewport?.addEventListener("scroll", followViewport);

    // A closing page must not reconnect; one restored from the back/forward cache starts afresh.
    const onPageHide = () => c.dispose();
    const onPageShow = (e: PageTransitionEvent) => {
      if (e.persisted) location.reload();
    };
    window.addEventListener("pagehide", onPageHide);
    window.addEventListener("pageshow", onPageShow);

    // Browser tests drop the socket through this hook; it exists only when the test harness set
    // `__cmTestHooks` before the page loaded (web/tests/lib.mjs), never for a user.
    if (window.__cmTestHooks) window.__cmTerm = {
      dropConnection: (hold) => c.dropConnection(hold),
      release: () => c.release(),
      state: () => c.state.kind,
      offset: () => c.offset,
    };
    c.start();
    if (modeRef.current === "rw") term.focus();

    return () => {
      if (window.__cmTerm) delete window.__cmTerm;
      c.dispose();
      client.current = null;
      observer.disconnect();
      window.removeEventListener("orientationchange", scheduleFit);
      window.removeEventListener("pagehide", onPageHide);
      window.removeEventListener("pageshow", onPageShow);
      window.visualViewport?.removeEventListener("resize", followViewport);
      window.visualViewport?.removeEventListener("scroll", followViewport);
      window.clearTimeout(fitTimer);
      window.clearTimeout(flashTimer.current);
      subs.forEach((s) => s.dispose());
      term.dispose(); // also disposes the loaded addons
      xt.current = null;
    };
  }, [props.wsPath]);

  // Read-only is a reattach at the current offset: the screen stays, input and resize stop.
  useEffect(() => {
    const term = xt.current?.term;
    if (term) term.options.disableStdin = props.mode === "ro";
    client.current?.setMode(props.mode);
    if (props.mode === "ro") setCtrl(false);
  }, [props.mode]);

  // Settings apply to the open terminal at once.
  useEffect(() => {
    const term = xt.current?.term;
    if (!term) return;
    term.options.fontSize = prefs.fontSize ?? screenFontSize();
    term.options.theme = themeOf(prefs);
    refit.current();
  }, [prefs.fontSize, prefs.theme]);

  const pressKey = (k: Exclude<BarKey, "Ctrl">) => {
    const term = xt.current?.term;
    if (!term) return;
    const data = barKeyInput(k, term.modes.applicationCursorKeysMode, ctrlRef.current);
    setCtrl(false);
    client.current?.send(dataBytes(data));
  };

  const copy = async () => {
    const text = xt.current?.term.getSelection() ?? "";
    if (!text) return flash("Select some text in the terminal first.");
    flash((await copyText(text)) ? "Copied." : "The browser refused the clipboard; copy with the keyboard or a long press.");
  };

  const ro = props.mode === "ro";
  return (
    <div class={ro ? "term-view ro" : "term-view"} ref={viewRef}>
      <div class="term-toolbar">
        {/* The bar is one row; on a phone the size line below it gets a row of its own (term.css). */}
        <div class="term-bar">
          {props.status}
          <ConnBadge state={conn} ro={ro} />
          {notice ? (
            <span class="term-notice" role="status">
              {notice}
            </span>
          ) : null}
          <span class="spacer" />
          <button type="button" aria-pressed={ro} onClick={() => props.onModeChange(ro ? "rw" : "ro")}>
            Read-only
          </button>
          <button type="button" onClick={copy}>
            Copy
          </button>
          <button type="button" aria-pressed={findOpen} onClick={() => setFindOpen(!findOpen)}>
            Find
          </button>
          <button
            type="button"
            aria-pressed={settingsOpen}
            aria-label="Terminal settings"
            title="Font size, theme, key bar"
            onClick={() => setSettingsOpen(!settingsOpen)}
          >
            Aa
          </button>
          {/* Apart from the everyday buttons: a stop is not a slip of the finger away from Find. */}
          {props.actions ? <span class="term-actions">{props.actions}</span> : null}
        </div>
        {!ro && !holder && ptySize ? (
          <span class="term-size" data-testid="size-by-other">
            <span class="term-size-text">
              {ptySize.cols}×{ptySize.rows}, set by {ptySize.by ? `another viewer (${ptySize.by})` : "another viewer"}
            </span>{" "}
            <button type="button" onClick={() => fitMine.current()}>
              Fit to my window
            </button>
          </span>
        ) : null}
      </div>
      {settingsOpen ? (
        <TermSettings
          prefs={prefs}
          defaultFontSize={screenFontSize()}
          onChange={setPrefs}
          onClose={() => setSettingsOpen(false)}
        />
      ) : null}
      {findOpen && xt.current ? (
        <FindBar
          search={xt.current.search}
          onClose={() => {
            setFindOpen(false);
            xt.current?.term.focus();
          }}
        />
      ) : null}
      <div class="term-host" ref={hostRef} style={{ background: themeOf(prefs).background }} />
      <KeyBar
        keys={prefs.keys}
        ctrl={ctrl} disabled={ro || conn.kind === "exited" || conn.kind === "gone"} onCtrl={() => setCtrl(!ctrlRef.current)} onKey={pressKey} />
    </div>
  );
}

function ConnBadge(props: { state: ConnState; ro: boolean }) {
  const s = props.state;
  let text: string;
  switch (s.kind) {
    case "connecting":
      text = "connecting…";
      break;
    case "live":
      text = props.ro ? "live · read-only" : "live";
      break;
    case "reconnecting":
      text = `reconnecting… (${s.reason})`;
      break;
    case "exited":
      text = `exited (${exitText(s.code, s.signal) || "no status"})`;
      break;
    case "gone":
      text = s.reason;
      break;
    case "closed":
      text = "closed";
      break;
  }
  return (
    <span class={`conn conn-${s.kind}`} data-state={s.kind} title="connection to the terminal">
      {text}
    </span>
  );
}
