// The shell of the UI: login through the cookie flow, navigation, deep links, logout.
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
});
