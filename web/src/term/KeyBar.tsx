// The phone key bar: the keys a touch keyboard lacks. Buttons never take focus (pointerdown and
// mousedown are cancelled), so the on-screen keyboard stays up and typing continues in xterm.

import type { BarKey } from "./keys";

const KEYS: { key: BarKey | "Ctrl"; label: string; aria: string }[] = [
  { key: "Esc", label: "Esc", aria: "Esc" },
  { key: "Tab", label: "Tab", aria: "Tab" },
  { key: "Ctrl", label: "Ctrl", aria: "Ctrl" },
  { key: "CtrlC", label: "^C", aria: "Ctrl-C" },
  { key: "Left", label: "←", aria: "Left" },
  { key: "Up", label: "↑", aria: "Up" },
  { key: "Down", label: "↓", aria: "Down" },
  { key: "Right", label: "→", aria: "Right" },
  { key: "|", label: "|", aria: "Pipe" },
  { key: "~", label: "~", aria: "Tilde" },
];

const keepFocus = (e: Event) => e.preventDefault();

export function KeyBar(props: {
  ctrl: boolean;
  disabled: boolean;
  onCtrl: () => void;
  onKey: (k: BarKey) => void;
}) {
  return (
    <div class="key-bar" role="toolbar" aria-label="terminal keys">
      {KEYS.map(({ key, label, aria }) => (
        <button
          type="button"
          tabIndex={-1}
          aria-label={aria}
          aria-pressed={key === "Ctrl" ? props.ctrl : undefined}
          class={key === "Ctrl" && props.ctrl ? "armed" : undefined}
          disabled={props.disabled}
          onPointerDown={keepFocus}
          onMouseDown={keepFocus}
          onClick={() => (key === "Ctrl" ? props.onCtrl() : props.onKey(key))}
        >
          {label}
        </button>
      ))}
    </div>
  );
}
