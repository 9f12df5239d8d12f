// Terminal settings a user picks once per browser: font size, colour theme, and which keys the
// phone key bar shows. Kept in localStorage; a value that does not parse falls back to the default.

import { useState } from "preact/hooks";
import type { ITheme } from "@xterm/xterm";
import { ALL_BAR_KEYS, DEFAULT_BAR_KEYS, type BarKey } from "./keys";

const STORAGE_KEY = "cm.terminal.prefs";
export const FONT_MIN = 9;
export const FONT_MAX = 24;

export const THEMES: Record<string, { label: string; theme: ITheme }> = {
  dark: {
    label: "Dark",
    theme: { background: "#0b0d11", foreground: "#e6e8ee", cursor: "#e6e8ee", selectionBackground: "#3a4a6b" },
  },
  light: {
    label: "Light",
    theme: {
      background: "#fbfbf8",
      foreground: "#1d2128",
      cursor: "#1d2128",
      selectionBackground: "#b9cdf0",
      black: "#1d2128",
      white: "#8a8f98",
      brightWhite: "#5c6370",
      yellow: "#9a6700",
      brightYellow: "#7d5400",
      green: "#1a7f37",
      brightGreen: "#116329",
      cyan: "#0e7490",
      brightCyan: "#0b5e74",
    },
  },
  contrast: {
    label: "High contrast",
    theme: { background: "#000000", foreground: "#ffffff", cursor: "#ffff00", selectionBackground: "#005fd7" },
  },
};

export interface TermPrefs {
  /** null: the size for the screen (smaller on a phone). */
  fontSize: number | null;
  theme: string;
  keys: BarKey[];
}

const DEFAULTS: TermPrefs = { fontSize: null, theme: "dark", keys: DEFAULT_BAR_KEYS };

export function loadPrefs(): TermPrefs {
  try {
    const raw = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? "{}") as Partial<TermPrefs>;
    const size = raw.fontSize;
    return {
      fontSize: typeof size === "number" && size >= FONT_MIN && size <= FONT_MAX ? size : null,
      theme: typeof raw.theme === "string" && raw.theme in THEMES ? raw.theme : DEFAULTS.theme,
      keys: Array.isArray(raw.keys) ? ALL_BAR_KEYS.filter((k) => raw.keys!.includes(k)) : DEFAULTS.keys,
    };
  } catch {
    return DEFAULTS;
  }
}

/** The settings and a setter that also stores them (a private window may refuse; then per tab). */
export function usePrefs(): [TermPrefs, (p: TermPrefs) => void] {
  const [prefs, setPrefs] = useState(loadPrefs);
  const save = (p: TermPrefs) => {
    setPrefs(p);
    try {
      localStorage.setItem(STORAGE_KEY, JSON.stringify(p));
    } catch {
      /* storage refused: the setting lasts for this page */
    }
  };
  return [prefs, save];
}

export const themeOf = (p: TermPrefs): ITheme => (THEMES[p.theme] ?? THEMES.dark).theme;
