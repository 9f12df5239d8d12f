// `--insecure-no-auth` on loopback: the UI opens without a login form, and offers no logout
// (there is no session to end).
import { env, run, shot } from "./lib.mjs";

await run("noauth", async ({ newPage }) => {
  const { page } = await newPage({ label: "noauth" });
  await page.goto(env.base + "/");
  await page.locator("header.topbar").waitFor();
  await page.locator("section.health .badge").filter({ hasText: "ok" }).waitFor();
  await page.locator(".live.on").waitFor(); // the live-events socket opened without a credential
  if ((await page.getByRole("button", { name: "Log out" }).count()) !== 0) {
    throw new Error("Log out offered without auth");
  }
  if ((await page.locator('input[name="token"]').count()) !== 0) {
    throw new Error("login form shown without auth");
  }
  await shot(page, "noauth");
});
