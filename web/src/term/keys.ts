// The bytes a terminal key sends, for the phone key bar (phones have no Esc, Ctrl or arrows).

export type BarKey = "Esc" | "Tab" | "Up" | "Down" | "Right" | "Left" | "CtrlC" | "|" | "~";

const ARROW_LETTER: Record<string, string> = { Up: "A", Down: "B", Right: "C", Left: "D" };

/**
 * The input for `key`. Arrows follow the terminal's cursor-key mode (`ESC O A` when an app such
 * as vim or less switched to application mode, `ESC [ A` otherwise); with `ctrl` they are the
 * xterm Ctrl-arrow sequences readline uses to move by word.
 */
export function barKeyInput(key: BarKey, appCursor: boolean, ctrl: boolean): string {
  const arrow = ARROW_LETTER[key];
  if (arrow) {
    if (ctrl) return `\x1b[1;5${arrow}`;
    return appCursor ? `\x1bO${arrow}` : `\x1b[${arrow}`;
  }
  switch (key) {
    case "Esc":
      return "\x1b";
    case "Tab":
      return "\t";
    case "CtrlC":
      return "\x03";
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
