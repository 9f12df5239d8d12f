// Helpers for browser tests of the terminal view: its visible text, typing a line, waiting for
// a marker to be shown exactly n times, waiting for the view to be live.
import { until } from "./lib.mjs";

/** The terminal's visible text (xterm's DOM renderer rows). */
export const screen = (page) => page.locator(".xterm-rows").innerText();
export const count = (text, needle) => text.split(needle).length - 1;

/** Types a line into the terminal. The command computes its marker, so only output matches. */
export async function typeLine(page, line) {
  await page.locator(".xterm-helper-textarea").focus();
  await page.keyboard.type(line);
  await page.keyboard.press("Enter");
}

/** Waits until `needle` appears exactly `n` times in the terminal. */
export async function seen(page, needle, n = 1) {
  await until(`${needle} ×${n}`, async () => count(await screen(page), needle) === n);
}

export const live = (page) => page.locator('.conn[data-state="live"]').waitFor();
