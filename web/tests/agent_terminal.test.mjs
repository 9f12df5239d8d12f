// An agent session in the terminal view (/agent-sessions/{id}): same protocol as a terminal, its
// own REST path for status and Stop. The agent is tests/fixtures/fake-claude, which answers each
// line with "echo: <line>".
import { apiCall, env, login, run, shot, until } from "./lib.mjs";

const rand = Math.random().toString(36).slice(2, 8);
const screen = (page) => page.locator(".xterm-rows").innerText();

await run("agent_terminal", async ({ newPage }) => {
  const agent = await apiCall("POST", "/api/agents", {
    name: `fake-${rand}`,
    command: [env.fakeClaude],
    project_dir: env.workDir,
  });
  const session = await apiCall("POST", `/api/agents/${agent.id}/session`);
  const { page } = await newPage({ label: "agent" });
  await login(page, `/agent-sessions/${session.id}`);
  await page.locator('.conn[data-state="live"]').waitFor();
  await page.locator(".term-tabs .tab.active", { hasText: `fake-${rand}` }).waitFor();
  await until("the banner", async () => (await screen(page)).includes(`session ${session.conversation_id}`));

  await page.locator(".xterm-helper-textarea").focus();
  await page.keyboard.type(`hello ${rand}`);
  await page.keyboard.press("Enter");
  await until("the answer", async () => (await screen(page)).includes(`echo: hello ${rand}`));
  // The agent titles its terminal with what it works on: beside its name in the toolbar, and
  // under its live badge on the Agents page.
  await page.keyboard.type(`title fixing ${rand}`);
  await page.keyboard.press("Enter");
  await page.locator(".term-toolbar .term-title", { hasText: `fixing ${rand}` }).waitFor();
  await shot(page, "agent-terminal");
  await page.goto(env.base + "/agents");
  await page.locator(`tr[data-agent="${agent.id}"] .session-title`, { hasText: `fixing ${rand}` }).waitFor();
  await shot(page, "agents-working-on");
  await page.goto(env.base + `/agent-sessions/${session.id}`);
  await page.locator('.conn[data-state="live"]').waitFor();

  await page.getByRole("button", { name: "Stop", exact: true }).click();
  await page.getByRole("button", { name: "Yes, stop" }).click();
  await page.locator('.conn[data-state="exited"]').waitFor();
  await page.getByRole("button", { name: "Close" }).waitFor();
  const after = await apiCall("GET", `/api/agent-sessions/${session.id}`);
  if (after.status === "running") throw new Error(`agent session still running: ${JSON.stringify(after)}`);
});
