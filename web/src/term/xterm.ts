// The xterm.js setup every session view uses: one place for options and addons.

import { Terminal, type ITheme } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
import { SearchAddon } from "@xterm/addon-search";
import { Unicode11Addon } from "@xterm/addon-unicode11";
import { WebLinksAddon } from "@xterm/addon-web-links";

/** Enough history for a long build log, bounded so a tab stays light (~10 MB at 200 cols). */
const SCROLLBACK_LINES = 10_000;
const FONT_FAMILY = 'ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", "Liberation Mono", monospace';

export interface XtermHandle {
  term: Terminal;
  fit: FitAddon;
  search: SearchAddon;
}

/** A terminal opened in `host` with fit, search, web links and Unicode 11 widths. */
export function openXterm(host: HTMLElement, fontSize: number, theme: ITheme): XtermHandle {
  const term = new Terminal({
    allowProposedApi: true, // the Unicode 11 width tables are a "proposed" API
    scrollback: SCROLLBACK_LINES,
    convertEol: false, // the PTY already sends \r\n
    fontFamily: FONT_FAMILY,
    fontSize,
    cursorBlink: true,
    theme,
  });
  const fit = new FitAddon();
  const search = new SearchAddon();
  term.loadAddon(fit);
  term.loadAddon(search);
  term.loadAddon(new WebLinksAddon());
  term.loadAddon(new Unicode11Addon());
  term.unicode.activeVersion = "11";
  term.open(host);
  return { term, fit, search };
}

/** Input bytes of an xterm `onData` string (UTF-8). */
const encoder = new TextEncoder();
export function dataBytes(data: string): Uint8Array {
  return encoder.encode(data);
}

/** Input bytes of an xterm `onBinary` string (one byte per char, e.g. mouse reports). */
export function binaryBytes(data: string): Uint8Array {
  return Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff);
}
