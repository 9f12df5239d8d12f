// The bytes a terminal key sends, for the phone key bar (phones have no Esc, Ctrl or arrows).

export type BarKey =
  | "Esc"
  | "Tab"
  | "ShiftTab"
  | "Ctrl"
  | "CtrlC"
  | "Left"
  | "Up"
  | "Down"
  | "Right"
  | "Home"
  | "End"
  | "PgUp"
  | "PgDn"
  | "|"
  | "~"
  | "/"
  | "-";

/** Every key the bar can show, in its order: label and accessible name. */
export const BAR_KEYS: { key: BarKey; label: string; aria: string }[] = [
  { key: "Esc", label: "Esc", aria: "Esc" },
  { key: "Tab", label: "Tab", aria: "Tab" },
  // Claude Code's mode switch (plan / auto-accept), and back-tab in forms and menus.
  { key: "ShiftTab", label: "⇧Tab", aria: "Shift-Tab" },
  { key: "Ctrl", label: "Ctrl", aria: "Ctrl" },
  { key: "CtrlC", label: "^C", aria: "Ctrl-C" },
  { key: "Left", label: "←", aria: "Left" },
  { key: "Up", label: "↑", aria: "Up" },
  { key: "Down", label: "↓", aria: "Down" },
  { key: "Right", label: "→", aria: "Right" },
  { key: "Home", label: "Home", aria: "Home" },
  { key: "End", label: "End", aria: "End" },
  { key: "PgUp", label: "PgUp", aria: "Page Up" },
  { key: "PgDn", label: "PgDn", aria: "Page Down" },
  { key: "|", label: "|", aria: "Pipe" },
  { key: "~", label: "~", aria: "Tilde" },
  { key: "/", label: "/", aria: "Slash" },
  { key: "-", label: "-", aria: "Dash" },
];

export const ALL_BAR_KEYS: BarKey[] = BAR_KEYS.map((k) => k.key);
/** Shown until the user picks: the first row of keys a phone lacks most. */
export const DEFAULT_BAR_KEYS: BarKey[] = ["Esc", "Tab", "ShiftTab", "Ctrl", "CtrlC", "Left", "Up", "Down", "Right", "PgUp", "PgDn", "|", "~"];

const ARROW_LETTER: Record<string, string> = { Up: "A", Down: "B", Right: "C", Left: "D", Home: "H", End: "F" };

/**
 * The input for `key`. Arrows, Home and End follow the terminal's cursor-key mode (`ESC O A` when
 * an app such as vim or less switched to application mode, `ESC [ A` otherwise); with `ctrl`
 * they are the xterm Ctrl-modified sequences readline uses to move by word.
 */
export function barKeyInput(key: Exclude<BarKey, "Ctrl">, appCursor: boolean, ctrl: boolean): string {
  const letter = ARROW_LETTER[key];
  if (letter) {
    if (ctrl) return `\x1b[1;5${letter}`;
    return appCursor ? `\x1bO${letter}` : `\x1b[${letter}`;
  }
  switch (key) {
    case "Esc":
      return "\x1b";
    case "Tab":
      return "\t";
    case "ShiftTab":
      return "\x1b[Z";
    case "CtrlC":
      return "\x03";
    case "PgUp":
      return "\x1b[5~";
    case "PgDn":
      return "\x1b[6~";
    default:
      return key;
  }
}

/**
 * What a typed character becomes with the sticky Ctrl held: letters and @[\]^_ map to C0
 * controls as on a real keyboard (c → 0x03), space → NUL, ? → DEL; anything else (a paste, an IME
 * word) passes unchanged.
 */
export function withCtrl(data: string): string {
  if (data.length !== 1) return data;
  const c = data.toUpperCase().charCodeAt(0);
  if (c >= 0x40 && c <= 0x5f) return String.fromCharCode(c & 0x1f);
  if (data === " ") return "\x00";
  if (data === "?") return "\x7f";
  return data;
}
