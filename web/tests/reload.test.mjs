// A terminal open in the page while the server reloads in place (SIGHUP: exec-in-place, same
// PID, sessions handed over): the view reconnects by itself, shows no error, replays nothing it
// already shows, and the shell goes on (new output appears). Run by tests/web_reload.rs, which
// passes the server's pid in CM_SERVER_PID.
import { apiCall, env, login, run, shot, until } from "./lib.mjs";
import { live, seen, typeLine } from "./term.mjs";

const rand = Math.random().toString(36).slice(2, 8);
const serverPid = Number(process.env.CM_SERVER_PID);
if (!serverPid) throw new Error("CM_SERVER_PID is not set: run through tests/web_reload.rs");

await run("reload", async ({ newPage }) => {
  const { page } = await newPage({ label: "rw" });
  await login(page, "/terminals");
  await page.locator('input[name="cwd"]').fill(env.workDir);
  await page.locator('input[name="command"]').fill("bash --norc --noprofile");
  await page.locator('input[name="name"]').fill(`r-${rand}`);
  await page.getByRole("button", { name: "Open terminal" }).click();
  await page.waitForURL(/\/terminals\/[^/?]+$/);
  await live(page);
  for (let i = 1; i <= 3; i++) {
    await typeLine(page, `echo before-$((${i}*10))-${rand}`);
    await seen(page, `before-${i * 10}-${rand}`);
  }
  await shot(page, "reload-before");

  // The server reloads: the view sees 1012, reconnects with since= and is live again.
  process.kill(serverPid, "SIGHUP");
  await until("the reload", async () => {
    const health = await apiCall("GET", "/api/system/health/detailed");
    return health.reload?.generation === 1 && health.reload?.last_reload_outcome === "ok";
  });
  await live(page);
  await typeLine(page, `echo after-$((6*7))-${rand}`);
  await seen(page, `after-42-${rand}`);
  for (let i = 1; i <= 3; i++) await seen(page, `before-${i * 10}-${rand}`, 1);
  const alerts = await page.getByRole("alert").count();
  const errors = await page.locator(".term-notice, .error").allInnerTexts();
  if (alerts || errors.some((t) => /error|not_found|failed/i.test(t))) {
    throw new Error(`an error is shown after the reload: ${alerts} alerts, ${JSON.stringify(errors)}`);
  }
  await shot(page, "reload-after");
});
