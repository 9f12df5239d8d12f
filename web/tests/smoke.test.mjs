// The shell of the UI: login through the cookie flow, navigation, deep links, logout; a monitor
// token sees health and nothing it may not use.
import { env, login, run, shot, WAIT } from "./lib.mjs";

await run("smoke", async ({ newPage }) => {
  const { page } = await newPage({ label: "smoke" });
  await login(page);
  await page.getByRole("link", { name: "Tasks" }).first().waitFor({ timeout: WAIT });
  await shot(page, "dashboard");
  await page.goto(env.base + "/tasks");
  await page.locator("header.topbar").waitFor();
  await page.getByRole("button", { name: "Log out" }).click();
  await page.locator('input[name="token"]').waitFor();

  // A monitor token: health only, no page or socket it would be refused (no console error).
  const { page: mon } = await newPage({ label: "monitor" });
  await login(mon, "/", env.monitorToken);
  await mon.locator("section.health .badge").filter({ hasText: "ok" }).waitFor();
  if ((await mon.getByRole("link", { name: "Terminals" }).count()) !== 0) {
    throw new Error("a monitor token is offered the Terminals page");
  }
  await mon.goto(env.base + "/tasks/1");
  await mon.getByText("Not with a monitor token").waitFor();
  await shot(mon, "monitor");
});
