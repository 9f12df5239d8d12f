// The data pages beyond the main path: the dashboard's health and live updates, API errors
// shown with the server's message, not-found deep links, task filters and paging kept in the URL
// across a reload, a busy task refusing deletion, cancelling a run, and a phone-sized screen.
import { apiCall, env, login, run, shot, until } from "./lib.mjs";

await run("pages", async ({ newPage }) => {
  // Chromium logs every non-2xx fetch as a console error; these pages provoke 409s (a taken
  // agent name, a busy task), 422s (an out-of-range field) and 404s (unknown ids) on purpose
  // and must show them.
  const { page } = await newPage({ label: "pages", allow: [/status of 409/, /status of 404/, /status of 422/] });
  await login(page, "/");

  // Dashboard: health is shown.
  await page.locator(".health .badge", { hasText: "ok" }).waitFor();
  await page.locator(".health dd", { hasText: "ms" }).first().waitFor();
  await shot(page, "pages-dashboard");

  // Dashboard reacts live: a run started through the API appears, then finishes, without reload.
  const agent = await apiCall("POST", "/api/agents", {
    name: "dash-agent",
    command: [env.fakeClaude],
    project_dir: env.workDir,
  });
  const t1 = await apiCall("POST", "/api/tasks", { title: "Dashboard run", agent_id: agent.id });
  const r1 = await apiCall("POST", `/api/tasks/${t1.id}/run`, {});
  await page.locator(`.recent tr[data-execution="${r1.id}"] .badge`, { hasText: "succeeded" }).waitFor();

  // Tasks page reacts live: a task created through the API appears without reload.
  await page.getByRole("link", { name: "Tasks" }).first().click();
  await page.locator("table.tasks").waitFor();
  await apiCall("POST", "/api/tasks", { title: "Arrived live", tags: ["live"] });
  await page.getByRole("link", { name: "Arrived live" }).waitFor();

  // Filters and paging live in the URL and survive a reload.
  for (let i = 0; i < 27; i++) await apiCall("POST", "/api/tasks", { title: `Bulk ${i}`, status: "draft", tags: ["bulk"] });
  await page.locator('select[name="status"]').selectOption("draft");
  await until("status in the URL", () => new URL(page.url()).searchParams.get("status") === "draft");
  await page.locator('input[name="q"]').fill("Bulk");
  await page.locator('input[name="q"]').press("Enter");
  await until("q in the URL", () => new URL(page.url()).searchParams.get("q") === "Bulk");
  await page.locator(".pager", { hasText: "1–25 of 27" }).waitFor();
  await page.getByRole("button", { name: "Older →" }).click();
  await until("offset in the URL", () => new URL(page.url()).searchParams.get("offset") === "25");
  await page.locator(".pager", { hasText: "26–27 of 27" }).waitFor();
  await page.reload();
  await page.locator(".pager", { hasText: "26–27 of 27" }).waitFor();
  if ((await page.locator('select[name="status"]').inputValue()) !== "draft") throw new Error("status filter lost on reload");
  if ((await page.locator('input[name="q"]').inputValue()) !== "Bulk") throw new Error("search lost on reload");
  if (await page.getByRole("link", { name: "Arrived live" }).count()) throw new Error("filter not applied after reload");
  await shot(page, "pages-tasks-filtered");

  // An API error is shown with the server's message, and the field it names is marked.
  await page.goto(`${env.base}/agents`);
  await page.getByRole("button", { name: "New agent" }).click();
  await page.locator('form.agent-form input[name="name"]').fill("dash-agent");
  await page.locator('form.agent-form input[name="command"]').fill(env.fakeClaude);
  await page.getByRole("button", { name: "Create agent" }).click();
  await page.locator(".error", { hasText: 'an agent named "dash-agent" already exists' }).waitFor();
  await page.locator(".error code", { hasText: "name_taken" }).waitFor();
  await page.locator(".field.invalid input[name='name']").waitFor();
  await shot(page, "pages-agent-error");

  // The agent CLI's kind: choosing one fills in its command and session flags and hides the
  // fields it has no flag for; a command that is not installed is refused, naming `command`.
  const af = page.locator("form.agent-form");
  await af.locator('input[name="command"]').fill("");
  await af.locator('select[name="kind"]').selectOption("codex");
  if ((await af.locator('input[name="command"]').inputValue()) !== "codex") throw new Error("codex's command not filled in");
  if ((await af.locator('input[name="session_resume"]').inputValue()) !== "resume --last") throw new Error("codex's resume flags not filled in");
  await af.locator('textarea[name="system_prompt"]').waitFor({ state: "detached" });
  await af.locator('input[name="allowed_tools"]').waitFor({ state: "detached" });
  await af.locator('input[name="name"]').fill("codex-agent");
  await af.getByRole("button", { name: "Create agent" }).click();
  await page.locator(".error", { hasText: "OpenAI Codex CLI" }).waitFor();
  await page.locator(".field.invalid input[name='command']").waitFor();
  await shot(page, "pages-agent-kind-codex");
  await af.locator('select[name="kind"]').selectOption("command");
  if ((await af.locator('input[name="command"]').inputValue()) !== "") throw new Error("codex's command kept for a plain command");
  await af.locator('input[name="model"]').waitFor({ state: "detached" });
  await af.locator('input[name="command"]').fill("sh -c 'echo hi'");
  await af.getByRole("button", { name: "Create agent" }).click();
  await page.locator("h1", { hasText: "codex-agent" }).waitFor();
  const plain = (await apiCall("GET", "/api/agents")).items.find((a) => a.name === "codex-agent");
  if (plain.kind !== "command" || JSON.stringify(plain.command) !== '["sh","-c","echo hi"]' || plain.session_args.first.length)
    throw new Error(`plain command agent saved as ${JSON.stringify(plain)}`);

  // Editing: a secret env value comes back redacted and saving keeps it; restart policy numbers.
  const secret = await apiCall("POST", "/api/agents", {
    name: "secret-agent",
    command: [env.fakeClaude],
    project_dir: env.workDir,
    env: { API_TOKEN: "s3cret", PLAIN: "visible" },
  });
  await page.goto(`${env.base}/agents/${secret.id}`);
  await page.getByRole("button", { name: "Edit" }).click();
  const envText = await page.locator('textarea[name="env"]').inputValue();
  if (!envText.includes("API_TOKEN=[redacted]") || !envText.includes("PLAIN=visible"))
    throw new Error(`env shown as ${JSON.stringify(envText)}`);
  await page.locator('input[name="idle_timeout_secs"]').fill("99999999");
  await page.getByRole("button", { name: "Save" }).click();
  await page.locator(".field.invalid input[name='idle_timeout_secs']").waitFor();
  await page.locator(".error", { hasText: "idle_timeout_secs" }).waitFor();
  await page.locator('input[name="idle_timeout_secs"]').fill("0");
  await page.locator('select[name="restart_policy"]').selectOption("on-failure");
  await page.locator('input[name="max_restarts"]').fill("3");
  // args and session flags are editable: a quoted word stays one argument; empty means none.
  if ((await page.locator('input[name="session_first"]').inputValue()) !== "--session-id {session_id}")
    throw new Error("session flags not shown");
  await page.locator('input[name="args"]').fill("--note 'two words'");
  await page.locator('input[name="session_resume"]').fill("");
  await page.getByRole("button", { name: "Save" }).click();
  await page.locator("dd.restart", { hasText: "on-failure · 3 in 10m 0s" }).waitFor();
  await page.locator("dd.idle", { hasText: "never" }).waitFor();
  const stored = await apiCall("GET", `/api/agents/${secret.id}`);
  if (stored.env.API_TOKEN !== "[redacted]" || stored.env.PLAIN !== "visible")
    throw new Error(`env after save: ${JSON.stringify(stored.env)}`);
  if (JSON.stringify(stored.args) !== '["--note","two words"]' || stored.session_args.resume.length !== 0)
    throw new Error(`args after save: ${JSON.stringify(stored.args)} ${JSON.stringify(stored.session_args)}`);

  // Open session goes to its terminal view; the agent and the dashboard show it live; Stop ends it.
  await page.getByRole("button", { name: "Open session" }).click();
  await until("the agent session's page", () => /\/agent-sessions\/[^/]+$/.test(new URL(page.url()).pathname));
  const sessionPath = new URL(page.url()).pathname;
  await page.goto(`${env.base}/`);
  await page.locator(`.card a[href="${sessionPath}"]`).waitFor();
  await page.goto(`${env.base}/agents/${secret.id}`);
  await page.locator(".page-head .badge", { hasText: "live" }).waitFor();
  await page.getByRole("button", { name: "Stop session" }).click();
  await page.getByRole("button", { name: "Yes, stop session" }).click();
  await page.locator(".page-head .badge", { hasText: "live" }).waitFor({ state: "detached" });
  // Its execution keeps the output tail.
  const sessions = await apiCall("GET", "/api/executions?type=agent_session");
  await page.goto(`${env.base}/executions/${sessions.items[0].id}`);
  await page.locator("h1", { hasText: "Agent session" }).waitFor();
  await page.locator("pre.output", { hasText: "fake-claude session" }).waitFor();

  // Status moves: only the legal ones are offered, and a move is applied.
  const draft = await apiCall("POST", "/api/tasks", { title: "Drafty", status: "draft" });
  await page.goto(`${env.base}/tasks/${draft.id}`);
  await page.locator(".page-head .badge", { hasText: "draft" }).waitFor();
  const moves = await page.locator("button[data-move]").evaluateAll((bs) => bs.map((b) => b.dataset.move).join(","));
  if (moves !== "pending,cancelled") throw new Error(`moves offered from draft: ${moves}`);
  await page.locator('button[data-move="cancelled"]').click();
  await page.locator(".page-head .badge", { hasText: "cancelled" }).waitFor();
  await page.locator('button[data-move="pending"]', { hasText: "Retry" }).waitFor();

  // Unknown ids: the 404 message, not a crash.
  await page.goto(`${env.base}/tasks/999999`);
  await page.locator(".error", { hasText: "no task with id 999999" }).waitFor();
  await page.goto(`${env.base}/executions/999999`);
  await page.locator(".error", { hasText: "no execution with id 999999" }).waitFor();
  await page.goto(`${env.base}/agents/999999`);
  await page.locator(".error", { hasText: "no agent with id 999999" }).waitFor();

  // A running run: the task refuses deletion (409 task_busy, message shown); cancel stops the run.
  const slow = await apiCall("POST", "/api/agents", {
    name: "slow-agent",
    command: [env.fakeClaude],
    project_dir: env.workDir,
    env: { FAKE_CLAUDE_MODE: "slow", FAKE_CLAUDE_DELAY_SECS: "60" },
  });
  const t2 = await apiCall("POST", "/api/tasks", { title: "Slow one", agent_id: slow.id });
  const r2 = await apiCall("POST", `/api/tasks/${t2.id}/run`, {});
  await page.goto(`${env.base}/tasks/${t2.id}`);
  await page.locator(`tr[data-execution="${r2.id}"] .badge`, { hasText: "running" }).waitFor();
  await page.getByRole("button", { name: "Delete" }).click();
  await page.getByRole("button", { name: "Yes, delete" }).click();
  await page.locator(".error", { hasText: "has a pending or running execution" }).waitFor();
  await page.locator(".error code", { hasText: "task_busy" }).waitFor();
  await page.locator(`tr[data-execution="${r2.id}"] a`).click();
  await page.locator(".ev-assistant").first().waitFor();
  await page.getByRole("button", { name: "Cancel run" }).click();
  await page.getByRole("button", { name: "Yes, cancel run" }).click();
  await page.locator(".page-head .badge", { hasText: "cancelled" }).waitFor();
  await page.locator(".stream", { hasText: "complete" }).waitFor();

  // A phone: the task list fits 390 px (less important columns hidden), the menu opens.
  const { page: phone } = await newPage({ label: "phone", viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  await login(phone, "/tasks");
  await phone.locator("table.tasks").waitFor();
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 0) throw new Error(`the task list is ${overflow}px wider than the phone`);
  await shot(phone, "pages-phone-tasks");
  await phone.goto(`${env.base}/executions/${r1.id}`);
  await phone.locator("dd.cost", { hasText: "$0.0123" }).waitFor();
  await shot(phone, "pages-phone-execution");
});
