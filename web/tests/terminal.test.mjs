// A terminal in the browser, end to end against the real server: open through the form, type,
// reload (same session, previous output shown once), a second read-only viewer whose keystrokes
// never reach the shell, and a dropped connection whose queued input runs once after reconnect.
import { apiCall, env, login, run, shot, until } from "./lib.mjs";

const rand = Math.random().toString(36).slice(2, 8);

/** The terminal's visible text (xterm's DOM renderer rows). */
const screen = (page) => page.locator(".xterm-rows").innerText();
const count = (text, needle) => text.split(needle).length - 1;

/** Types a line into the terminal. The command computes its marker, so only output matches. */
async function typeLine(page, line) {
  await page.locator(".xterm-helper-textarea").focus();
  await page.keyboard.type(line);
  await page.keyboard.press("Enter");
}

/** Waits until `needle` appears exactly `n` times in the terminal. */
async function seen(page, needle, n = 1) {
  await until(`${needle} ×${n}`, async () => count(await screen(page), needle) === n);
}

const live = (page) => page.locator('.conn[data-state="live"]').waitFor();

await run("terminal", async ({ newPage }) => {
  const { page } = await newPage({
    label: "rw",
    permissions: ["clipboard-read", "clipboard-write"],
    allow: [/status of 422/], // the refused cwd below, on purpose
  });
  await login(page, "/terminals");

  // The form's errors are shown with the server's message: a cwd outside the allowed roots (422).
  await page.locator('input[name="command"]').fill("bash");
  await page.locator('input[name="cwd"]').fill("/");
  await page.getByRole("button", { name: "Open terminal" }).click();
  await page.getByRole("alert").filter({ hasText: "cwd" }).waitFor();
  await shot(page, "terminal-form-error");
  // A typo'd command is refused in the form, before anything runs.
  await page.locator('input[name="command"]').fill("bash -c 'echo hi");
  await page.getByRole("button", { name: "Open terminal" }).click();
  await page.getByRole("alert").filter({ hasText: "unclosed ' quote" }).waitFor();

  // Open a terminal through the form: cwd and an argv command.
  await page.locator('input[name="cwd"]').fill(env.workDir);
  await page.locator('input[name="command"]').fill("bash --norc --noprofile");
  await page.locator('input[name="name"]').fill(`t-${rand}`);
  await page.getByRole("button", { name: "Open terminal" }).click();
  await page.waitForURL(/\/terminals\/[^/?]+$/);
  const url = page.url();
  await live(page);
  await page.getByRole("link", { name: `t-${rand}` }).waitFor();

  const hello = `hello-42-${rand}`;
  await typeLine(page, `echo hello-$((6*7))-${rand}`);
  await seen(page, hello);
  await shot(page, "terminal-typed");

  // Reload: the same session, its output replayed once. A later marker proves the replay is done.
  await page.reload();
  await live(page);
  if (page.url() !== url) throw new Error(`reload moved to ${page.url()}, expected ${url}`);
  await typeLine(page, `echo mark-$((1+2))-${rand}`);
  await seen(page, `mark-3-${rand}`);
  await seen(page, hello, 1);

  // The window title the program sets (OSC 0): beside the name the user gave, in the toolbar,
  // and again after a reload (the server's snapshot carries it). The name stays the tab's and
  // the browser tab's label. The command line shows `$((2+5))`, so only the title says `job-7`.
  await typeLine(page, `printf '\\033]0;%s\\007' "job-$((2+5))-${rand}"`);
  const progTitle = page.locator(".term-toolbar .term-title", { hasText: `job-7-${rand}` });
  await progTitle.waitFor();
  await until("the browser tab's title", async () => (await page.title()) === `t-${rand} · claude-manager`);
  await shot(page, "terminal-title");
  await page.reload();
  await live(page);
  await progTitle.waitFor();
  // The dashboard's live sessions say it beside the name too.
  await page.goto(env.base + "/");
  await page.locator(".session-title", { hasText: `job-7-${rand}` }).waitFor();
  await page.goto(url);
  await live(page);
  // An unnamed session's tab is the title its program set, and it follows a later title without
  // a reload (the session's activity tick, 5 s after it started, brings the tabs up to date).
  const other = await apiCall("POST", "/api/terminals", {
    command: ["sh", "-c", `printf '\\033]2;%s\\007' "build-${rand}"; sleep 6; printf '\\033]2;%s\\007' "done-${rand}"; exec cat`],
    cwd: env.workDir,
  });
  await until("the other session's title", async () => (await apiCall("GET", `/api/terminals/${other.id}`)).title !== null);
  await page.reload();
  await live(page);
  await page.getByRole("link", { name: `build-${rand}` }).or(page.getByRole("link", { name: `done-${rand}` })).waitFor();
  await page.getByRole("link", { name: `done-${rand}` }).waitFor();
  await apiCall("DELETE", `/api/terminals/${other.id}`);

  // Copy: a double-click selects the output word, Copy puts it on the clipboard.
  // (xterm's screen layer takes the pointer events, so click where the row is drawn)
  const row = await page.locator(".xterm-rows > div", { hasText: new RegExp(`^${hello}`) }).boundingBox();
  await page.mouse.dblclick(row.x + 20, row.y + row.height / 2);
  await page.getByRole("button", { name: "Copy" }).click();
  await page.locator(".term-notice", { hasText: "Copied." }).waitFor();
  const clip = await page.evaluate(() => navigator.clipboard.readText());
  if (clip.trim() !== hello) throw new Error(`clipboard has ${JSON.stringify(clip)}, expected ${hello}`);

  // Find: it takes focus (typing goes into it, not the shell), a match is found, a missing word
  // says so, Enter goes to the next match and keeps the bar open, Escape closes it.
  await page.getByRole("button", { name: "Find" }).click();
  const find = page.getByRole("searchbox", { name: "Find in terminal" });
  await page.keyboard.type(`absent-${rand}`);
  if ((await find.inputValue()) !== `absent-${rand}`) throw new Error("the find bar did not take focus");
  await page.locator(".find-bar", { hasText: "no match" }).waitFor();
  await find.fill(`mark-3-${rand}`);
  await page.locator(".find-bar", { hasText: "no match" }).waitFor({ state: "detached" });
  await page.keyboard.press("Enter");
  await page.keyboard.press("Enter");
  if (!(await find.isVisible())) throw new Error("Enter closed the find bar");
  if ((await page.locator(".find-bar", { hasText: "no match" }).count()) !== 0) throw new Error("Enter lost the match");
  await shot(page, "terminal-find");
  await find.press("Escape");
  await find.waitFor({ state: "detached" });

  // Settings: a larger font and the light theme, remembered by this browser across a reload.
  const settings = page.getByRole("button", { name: "Terminal settings" });
  await settings.click();
  const size = page.locator(".term-settings .font-size");
  const before = Number((await size.innerText()).replace("px", ""));
  await page.getByRole("button", { name: "Larger font" }).click();
  await page.getByRole("button", { name: "Larger font" }).click();
  await page.locator('.term-settings select[name="theme"]').selectOption("light");
  await shot(page, "terminal-settings");
  await page.reload();
  await live(page);
  await page.getByRole("button", { name: "Terminal settings" }).click();
  await page.locator(".term-settings .font-size", { hasText: `${before + 2}px` }).waitFor();
  const bg = await page.locator(".term-host").evaluate((e) => getComputedStyle(e).backgroundColor);
  if (bg !== "rgb(251, 251, 248)") throw new Error(`light theme not kept across reload: ${bg}`);
  await page.getByRole("button", { name: "Smaller font" }).click();
  await page.getByRole("button", { name: "Smaller font" }).click();
  await page.locator('.term-settings select[name="theme"]').selectOption("dark");
  await page.getByRole("button", { name: "Close settings" }).click();

  // A second browser on the same URL switches to read-only: it sees live output, cannot type.
  const { page: ro } = await newPage({ label: "ro" });
  await login(ro, new URL(url).pathname);
  await live(ro);
  await ro.getByRole("button", { name: "Read-only" }).click();
  await ro.locator('button[aria-pressed="true"]', { hasText: "Read-only" }).waitFor();
  await ro.locator(".conn", { hasText: "read-only" }).waitFor();
  await typeLine(ro, `echo ro-marker-$((3*3))-${rand}`);
  await typeLine(page, `echo rw-$((4*4))-${rand}`);
  await seen(page, `rw-16-${rand}`);
  await seen(ro, `rw-16-${rand}`);
  for (const p of [page, ro]) {
    const text = await screen(p);
    if (text.includes("ro-marker")) throw new Error(`read-only input reached the shell:\n${text}`);
  }
  // Nor was it sent: the server answers read-only input with an error the view would show, and
  // that answer would have come before the rw output it has just shown.
  if (await ro.locator(".term-notice", { hasText: "read_only" }).count()) {
    throw new Error("the read-only view sent input");
  }
  await shot(ro, "terminal-readonly");

  // The socket drops and stays down: input typed meanwhile is queued and runs once on reconnect.
  await page.evaluate(() => window.__cmTerm.dropConnection(true));
  await page.locator('.conn[data-state="reconnecting"]').waitFor();
  await typeLine(page, `echo queued-$((2*3))-${rand}`);
  await page.evaluate(() => window.__cmTerm.release());
  await live(page);
  await seen(page, `queued-6-${rand}`);
  // An ordinary drop reconnects by itself.
  await page.evaluate(() => window.__cmTerm.dropConnection());
  await typeLine(page, `echo after-drop-$((5*5))-${rand}`);
  await seen(page, `after-drop-25-${rand}`);
  // Nothing was shown twice, in either viewer.
  for (const p of [page, ro]) {
    for (const needle of [`rw-16-${rand}`, `queued-6-${rand}`]) await seen(p, needle, 1);
  }
  await seen(page, hello, 1);
  await shot(page, "terminal-reconnected");

  // Stop (asked twice: a slip must not kill the session): both viewers see the exit, and nothing
  // reconnects.
  await page.getByRole("button", { name: "Stop", exact: true }).click();
  await page.locator(".term-actions .confirm", { hasText: "Stop this terminal?" }).waitFor();
  if ((await page.locator('.conn[data-state="live"]').count()) !== 1) throw new Error("Stop acted before it was confirmed");
  await page.getByRole("button", { name: "Yes, stop" }).click();
  await page.locator('.conn[data-state="exited"]').waitFor();
  await ro.locator('.conn[data-state="exited"]').waitFor();
  await page.locator(".badge", { hasText: "cancelled" }).waitFor();
  await shot(page, "terminal-stopped");
});
