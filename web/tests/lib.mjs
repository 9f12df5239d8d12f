// Browser-test harness: real Debian Chromium driven by playwright-core against the real server.
//
// Each `*.test.mjs` is run by `tests/web_ui.rs` (part of `cargo test`), which starts the server
// with a temp data dir and passes it in the environment:
//   CM_URL         base URL of the server (http://127.0.0.1:PORT)
//   CM_TOKEN       an admin token (the login page's input)
//   CM_MONITOR_TOKEN a monitor token (health and metrics only)
//   CM_FAKE_CLAUDE path of tests/fixtures/fake-claude (an agent CLI that prints what Claude prints)
//   CM_WORK_DIR    a temp directory inside the server's allowed roots
//   CM_SHOT_DIR    where screenshots go (target/web-screenshots)
// A test fails on any thrown error, on a page console error or uncaught exception, and on
// timing out; every wait is a bounded wait on something visible, never a sleep.

import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import path from "node:path";

export const env = {
  base: must("CM_URL"),
  token: process.env.CM_TOKEN ?? "", // empty when the server runs --insecure-no-auth
  monitorToken: process.env.CM_MONITOR_TOKEN ?? "",
  fakeClaude: process.env.CM_FAKE_CLAUDE ?? "",
  workDir: process.env.CM_WORK_DIR ?? "/tmp",
  shotDir: process.env.CM_SHOT_DIR ?? "target/web-screenshots",
};

/** Generous bound for any single wait (CI machines are slow; a real failure still ends). */
export const WAIT = 20_000;

function must(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run browser tests through \`cargo test\` (tests/web_ui.rs)`);
  return v;
}

const CHROMIUM = process.env.CM_CHROMIUM ?? "/usr/bin/chromium";

/** Every page opened through `newPage`, with the console errors it logged. */
const pages = [];

/**
 * Runs one browser test: launches Chromium, calls `fn({browser, newPage})`, then fails if any
 * page logged a console error. On failure, every open page is screenshotted as
 * `<name>-failure-<n>.png`.
 */
export async function run(name, fn) {
  mkdirSync(env.shotDir, { recursive: true });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-dev-shm-usage",
    ],
  });
  let failed = null;
  try {
    await fn({ browser, newPage: (opts) => newPage(browser, opts) });
    const errs = pages.flatMap((p) => p.errors.map((e) => `${p.label}: ${e}`));
    if (errs.length) throw new Error(`console errors on the page:\n  ${errs.join("\n  ")}`);
  } catch (e) {
    failed = e;
    let n = 0;
    for (const p of pages) {
      try {
        await p.page.screenshot({ path: path.join(env.shotDir, `${name}-failure-${n++}.png`), fullPage: true });
      } catch {
        /* page already gone */
      }
    }
  } finally {
    await browser.close().catch(() => {});
  }
  if (failed) {
    console.error(`FAIL ${name}: ${failed.stack ?? failed}`);
    process.exit(1);
  }
  console.log(`ok ${name}`);
}

/**
 * A new browser context and page recording console errors and uncaught exceptions.
 * `opts` are Playwright context options (viewport, isMobile, hasTouch, ...), plus `label`.
 * `allow` (regexps) lists console errors this test provokes on purpose.
 */
export async function newPage(browser, opts = {}) {
  const { label = `page${pages.length}`, allow = [], ...ctxOpts } = opts;
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...ctxOpts });
  // Exposes the UI's test hooks (e.g. window.__cmTerm to drop a terminal's socket).
  await context.addInitScript(() => {
    window.__cmTestHooks = true;
  });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  const entry = { label, page, errors: [] };
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    const text = m.text();
    if (allow.some((re) => re.test(text))) return;
    entry.errors.push(text);
  });
  page.on("pageerror", (e) => entry.errors.push(`uncaught: ${e.message}`));
  pages.push(entry);
  return { context, page };
}

/** Opens `path` and logs in through the login form (with the admin token unless told). */
export async function login(page, path = "/", token = env.token) {
  await page.goto(env.base + path);
  await page.locator('input[name="token"]').fill(token);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.locator("header.topbar").waitFor();
}

/** Saves a screenshot `<name>.png` under the artifacts directory. */
export async function shot(page, name) {
  await page.screenshot({ path: path.join(env.shotDir, `${name}.png`) });
}

/** Calls the API directly with the admin token (setup and checks, not what the user does). */
export async function apiCall(method, p, body) {
  const resp = await fetch(env.base + p, {
    method,
    headers: { Authorization: `Bearer ${env.token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await resp.text();
  const json = text ? JSON.parse(text) : undefined;
  if (!resp.ok) throw new Error(`${method} ${p}: ${resp.status} ${text}`);
  return json;
}

/** Waits until `check()` returns a truthy value (polled, bounded); returns it. */
export async function until(what, check, timeout = WAIT) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (last: ${last})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
