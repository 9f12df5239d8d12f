// The phone key bar: the keys a touch keyboard lacks, those the user chose (TermSettings).
// Buttons never take focus (pointerdown and mousedown are cancelled), so the on-screen keyboard
// stays up and typing continues in xterm.

import { BAR_KEYS, type BarKey } from "./keys";

const keepFocus = (e: Event) => e.preventDefault();

export function KeyBar(props: {
  keys: BarKey[];
  ctrl: boolean;
  disabled: boolean;
  onCtrl: () => void;
  onKey: (k: Exclude<BarKey, "Ctrl">) => void;
}) {
  const shown = BAR_KEYS.filter((k) => props.keys.includes(k.key));
  if (!shown.length) return null;
  return (
    <div class="key-bar" role="toolbar" aria-label="terminal keys">
      {shown.map(({ key, label, aria }) => (
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
