// Agents that ask (docs/approvals.md): the fake Claude Code asks for a permission through its
// PermissionRequest hook; the session page shows the approval card and the attention badge, the
// tab title counts it; Allow lets the agent go on. A second request (an edit) is denied with a
// message from the dashboard's "Needs you" card, which shows the file and the diff.
import { apiCall, env, login, run, shot, until } from "./lib.mjs";

const rand = Math.random().toString(36).slice(2, 8);
const screen = (page) => page.locator(".xterm-rows").innerText();

async function typeLine(page, text) {
  await page.locator(".xterm-helper-textarea").focus();
  await page.keyboard.type(text);
  await page.keyboard.press("Enter");
}

await run("approvals", async ({ newPage }) => {
  const agent = await apiCall("POST", "/api/agents", {
    name: `asker-${rand}`,
    command: [env.fakeClaude],
    project_dir: env.workDir,
  });
  const session = await apiCall("POST", `/api/agents/${agent.id}/session`);
  const { page } = await newPage({ label: "desk" });
  await login(page, `/agent-sessions/${session.id}`);
  await page.locator('.conn[data-state="live"]').waitFor();
  await until("the prompt", async () => (await screen(page)).includes("> "));
  // The tab title names the session (its agent), after the count of what needs you.
  const named = `asker-${rand} · claude-manager`;
  await until("the plain title", async () => (await page.title()) === named);

  await typeLine(page, `ask Bash {"command": "make deploy-${rand}"}`);
  const card = page.locator(".approval");
  await card.waitFor();
  await card.locator(".approval-command", { hasText: `make deploy-${rand}` }).waitFor();
  await page.locator('.attention[data-attention="approval"]').waitFor();
  await until("the count in the title", async () => (await page.title()) === `(1) ${named}`);
  await shot(page, "approvals-session-card");
  await card.getByRole("button", { name: "Allow" }).click();
  await until("the agent goes on", async () => (await screen(page)).includes("allowed: Bash"));
  await card.waitFor({ state: "detached" });
  await until("the title without a count", async () => (await page.title()) === named);

  await typeLine(page, `ask Edit {"file_path": "/srv/app/${rand}.txt", "old_string": "old line", "new_string": "new line"}`);
  await page.locator(".approval").waitFor();
  await page.goto(env.base + "/");
  const needs = page.locator(".needs-you");
  const edit = needs.locator(".approval", { hasText: "Edit" });
  await edit.locator(".approval-path", { hasText: `/srv/app/${rand}.txt` }).waitFor();
  await edit.locator(".approval-diff .del", { hasText: "old line" }).waitFor();
  await edit.locator(".approval-diff .add", { hasText: "new line" }).waitFor();
  await shot(page, "approvals-dashboard");
  await edit.locator(".approval-message").fill("keep the old line");
  await edit.getByRole("button", { name: "Deny" }).click();
  await edit.waitFor({ state: "detached" });
  await needs.getByText("Nothing waits for you.").or(needs.locator(".needs-sessions")).first().waitFor();
  const list = await apiCall("GET", "/api/approvals?status=denied");
  const denied = list.items.find((a) => a.tool_name === "Edit" && a.session_id === session.id);
  if (!denied || denied.message !== "keep the old line") {
    throw new Error(`denial not recorded as asked: ${JSON.stringify(list.items)}`);
  }
  await page.goto(env.base + `/agent-sessions/${session.id}`);
  await until("the agent read the message", async () => (await screen(page)).includes("denied: Edit: keep the old line"));

  // The same card on a phone.
  await typeLine(page, `ask Bash {"command": "rm -rf build-${rand}"}`);
  const { page: phone } = await newPage({
    label: "phone",
    viewport: { width: 390, height: 844 },
    isMobile: true,
    hasTouch: true,
  });
  await login(phone, "/");
  const phoneCard = phone.locator(".needs-you .approval", { hasText: `rm -rf build-${rand}` });
  await phoneCard.waitFor();
  await until("the phone's title counts it", async () => (await phone.title()) === "(1) claude-manager");
  await shot(phone, "approvals-phone");
  const box = await phoneCard.boundingBox();
  if (!box || box.x < 0 || box.x + box.width > 390 + 1) throw new Error(`card off screen: ${JSON.stringify(box)}`);
  await phoneCard.getByRole("button", { name: "Deny" }).tap();
  await until("the agent hears no", async () => (await screen(page)).includes("denied: Bash"));
});
