// The terminal's settings panel: font size, theme, and the phone key bar's keys. Changes apply at
// once and are remembered by this browser (prefs.ts).

import { BAR_KEYS } from "./keys";
import { FONT_MAX, FONT_MIN, THEMES, type TermPrefs } from "./prefs";

export function TermSettings(props: {
  prefs: TermPrefs;
  /** The size in use when the user has not picked one. */
  defaultFontSize: number;
  onChange: (p: TermPrefs) => void;
  onClose: () => void;
}) {
  const p = props.prefs;
  const size = p.fontSize ?? props.defaultFontSize;
  const setSize = (n: number) => props.onChange({ ...p, fontSize: Math.min(FONT_MAX, Math.max(FONT_MIN, n)) });
  return (
    <div class="term-settings" role="group" aria-label="terminal settings">
      <span class="setting">
        <span class="label">Font</span>
        <button type="button" aria-label="Smaller font" disabled={size <= FONT_MIN} onClick={() => setSize(size - 1)}>
          A−
        </button>
        <output class="font-size" aria-label="font size">
          {size}px
        </output>
        <button type="button" aria-label="Larger font" disabled={size >= FONT_MAX} onClick={() => setSize(size + 1)}>
          A+
        </button>
      </span>
      <label class="setting">
        <span class="label">Theme</span>
        <select name="theme" value={p.theme} onChange={(e) => props.onChange({ ...p, theme: e.currentTarget.value })}>
          {Object.entries(THEMES).map(([name, t]) => (
            <option value={name}>{t.label}</option>
          ))}
        </select>
      </label>
      <fieldset class="setting keys">
        <legend class="label">Key bar</legend>
        {BAR_KEYS.map((k) => (
          <label class="key-choice" title={k.aria}>
            <input
              type="checkbox"
              name={`key-${k.key}`}
              aria-label={`key bar: ${k.aria}`}
              checked={p.keys.includes(k.key)}
              onChange={(e) => {
                const on = e.currentTarget.checked;
                const keys = BAR_KEYS.map((b) => b.key).filter((b) => (b === k.key ? on : p.keys.includes(b)));
                props.onChange({ ...p, keys });
              }}
            />
            {k.label}
          </label>
        ))}
      </fieldset>
      <button type="button" class="link" aria-label="Close settings" onClick={props.onClose}>
        ×
      </button>
    </div>
  );
}
