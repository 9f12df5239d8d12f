// The Executions page and the honest words around it: every execution listed with filters, search
// and paging kept in the URL, live; task titles instead of ids; relative times with the exact one
// on hover; a failed run's reason in words; a run page's conversation, "Continue this
// conversation" and "Run again"; the dashboard's live sessions are live ones only. Then a
// screenshot of every page at desktop (1280×800) and phone (390×844) sizes.
import { apiCall, env, login, run, shot, until } from "./lib.mjs";

const PAGES = (ids) => [
  ["dashboard", "/"],
  ["terminals", "/terminals"],
  ["terminal", `/terminals/${ids.terminal}`],
  ["agents", "/agents"],
  ["agent", `/agents/${ids.agent}`],
  ["tasks", "/tasks"],
  ["task", `/tasks/${ids.task}`],
  ["executions", "/executions"],
  ["execution-run", `/executions/${ids.run}`],
  ["execution-failed", `/executions/${ids.failed}`],
  ["execution-terminal", `/executions/${ids.terminalExec}`],
];

await run("executions", async ({ newPage }) => {
  const { page } = await newPage({ label: "executions" });
  await login(page, "/");

  const agent = await apiCall("POST", "/api/agents", { name: "runner", command: [env.fakeClaude], project_dir: env.workDir });
  const failing = await apiCall("POST", "/api/agents", {
    name: "failer",
    command: [env.fakeClaude],
    project_dir: env.workDir,
    env: { FAKE_CLAUDE_MODE: "error" },
  });
  const task = await apiCall("POST", "/api/tasks", { title: "Tidy the changelog", description: "merge duplicate entries", agent_id: agent.id });
  const first = await apiCall("POST", `/api/tasks/${task.id}/run`, {});
  await until("the first run to succeed", async () => (await apiCall("GET", `/api/executions/${first.id}`)).status === "succeeded");

  // A live terminal and one that already ended: the dashboard lists only the live one.
  const live = await apiCall("POST", "/api/terminals", { command: ["bash", "--norc", "--noprofile"], cwd: env.workDir });
  const ended = await apiCall("POST", "/api/terminals", { command: ["true"], cwd: env.workDir });
  await until("the short terminal to end", async () => (await apiCall("GET", `/api/terminals/${ended.id}`)).status !== "running");
  await page.reload();
  const sessions = page.locator(".card", { has: page.locator("h2", { hasText: "Live sessions" }) });
  await sessions.locator(`a[href="/terminals/${live.id}"]`).waitFor();
  if ((await sessions.locator(`a[href="/terminals/${ended.id}"]`).count()) !== 0) throw new Error("an ended terminal is listed as live");
  // Unnamed terminals are named by program and directory, not "/bin/bash".
  await sessions.locator(`a[href="/terminals/${live.id}"]`, { hasText: /^bash .*· / }).waitFor();
  await page.locator(".health dd", { hasText: /\b1 terminal\b/ }).waitFor();
  // Recent executions name the task, and say when relatively, the exact time on hover.
  const recentRow = page.locator(`.recent tr[data-execution="${first.id}"]`);
  await recentRow.getByRole("link", { name: "Tidy the changelog" }).waitFor();
  const time = recentRow.locator("time");
  if (!/ago|just now/.test(await time.innerText())) throw new Error(`not a relative time: ${await time.innerText()}`);
  if (!(await time.getAttribute("title"))) throw new Error("no exact time on hover");

  // The nav leads to every execution.
  await page.getByRole("link", { name: "Executions" }).first().click();
  await page.locator("h1", { hasText: "Executions" }).waitFor();
  await page.locator(`tr[data-execution="${first.id}"]`).waitFor();
  await page.locator(`tr[data-execution="${live.execution_id}"]`).waitFor();

  // Live: a run started elsewhere appears, and its failure reason is in words.
  const failed = await apiCall("POST", `/api/tasks/${task.id}/run`, { agent_id: failing.id });
  await page.locator(`tr[data-execution="${failed.id}"] .badge`, { hasText: "failed" }).waitFor();
  // The task follows its latest run, not its first success.
  await until("the task to show its latest run", async () => (await apiCall("GET", `/api/tasks/${task.id}`)).status === "failed");

  // Filters: type, status, agent, text, dates; each in the URL, surviving a reload.
  const rows = () => page.locator("table.executions tbody tr").count();
  const urlHas = (k, v) => until(`${k}=${v} in the URL`, () => new URL(page.url()).searchParams.get(k) === v);
  await page.locator('select[name="type"]').selectOption("agent_run");
  await urlHas("type", "agent_run");
  await until("only runs", async () => (await rows()) === 2);
  await page.locator('select[name="status"]').selectOption("failed");
  await urlHas("status", "failed");
  await until("only the failed run", async () => (await rows()) === 1);
  await page.locator(`tr[data-execution="${failed.id}"]`).waitFor();
  await page.reload();
  await page.locator(`tr[data-execution="${failed.id}"]`).waitFor();
  if ((await page.locator('select[name="status"]').inputValue()) !== "failed") throw new Error("status filter lost on reload");
  await page.getByRole("button", { name: "Clear" }).click();
  await page.locator('select[name="agent_id"]').selectOption({ label: "failer" });
  await urlHas("agent_id", String(failing.id));
  await until("only the failer's run", async () => (await rows()) === 1);
  await page.getByRole("button", { name: "Clear" }).click();
  await page.locator('input[name="q"]').fill("DUPLICATE entries");
  await page.locator('input[name="q"]').press("Enter");
  await urlHas("q", "DUPLICATE entries");
  await until("the task's two runs found by their prompt", async () => (await rows()) === 2);
  await page.getByRole("button", { name: "Clear" }).click();
  await page.locator('input[name="from"]').fill("2001-01-01");
  await page.locator('input[name="to"]').fill("2001-01-02");
  await urlHas("to", "2001-01-02");
  await page.locator(".card p.muted", { hasText: "No execution matches." }).waitFor();
  await page.getByRole("button", { name: "Clear" }).click();

  // Paging: 25 a page, newer/older.
  for (let i = 0; i < 24; i++) await apiCall("POST", "/api/terminals", { command: ["true"], cwd: env.workDir, name: `bulk ${i}` });
  await page.locator(".pager", { hasText: /of (2[89]|3\d)/ }).waitFor();
  await page.getByRole("button", { name: "Older →" }).click();
  await urlHas("offset", "25");
  await until("the second page", async () => (await rows()) >= 3);
  await page.getByRole("button", { name: "← Newer" }).click();
  await until("back to the first page", () => !new URL(page.url()).searchParams.get("offset"));

  // The failed run: its reason quotes the agent; its conversation is shown; Run again and
  // Continue start new runs of the same task with the same agent.
  await page.goto(`${env.base}/executions/${failed.id}`);
  await page.locator("dd.reason", { hasText: "the agent reported an error: failed as asked" }).waitFor();
  const conv = await page.locator("dd.conversation").innerText();
  if (!/^[0-9a-f-]{36}$/.test(conv.trim())) throw new Error(`no conversation id shown: ${conv}`);
  await page.getByRole("button", { name: "Continue this conversation" }).click();
  await until("a new run page", () => !page.url().endsWith(`/executions/${failed.id}`));
  const continued = Number(new URL(page.url()).pathname.split("/").pop());
  const cont = await apiCall("GET", `/api/executions/${continued}`);
  if (!cont.command.includes("--resume") || !cont.command.includes(conv.trim()) || cont.agent_id !== failing.id) {
    throw new Error(`continue did not resume ${conv} with the same agent: ${JSON.stringify(cont.command)}`);
  }
  await page.locator(".page-head .badge", { hasText: "failed" }).waitFor();
  await page.getByRole("button", { name: "Run again" }).click();
  await until("another run page", () => !page.url().endsWith(`/executions/${continued}`));
  await page.locator(".page-head .badge", { hasText: "failed" }).waitFor();

  // Every page at both sizes, for a reviewer's eye; each must render without a console error.
  const ids = {
    terminal: live.id,
    terminalExec: live.execution_id,
    agent: agent.id,
    task: task.id,
    run: first.id,
    failed: failed.id,
  };
  const { page: phone } = await newPage({ label: "phone", viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  await login(phone, "/");
  for (const [size, p] of [["desktop", page], ["phone", phone]]) {
    for (const [name, path] of PAGES(ids)) {
      await p.goto(env.base + path);
      await p.locator("main.page h1, main.page .term-view, main.page .term-form").first().waitFor();
      await p.locator("text=Loading…").first().waitFor({ state: "detached" });
      await shot(p, `page-${name}-${size}`);
      const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      if (overflow > 0) throw new Error(`${name} at ${size} overflows sideways by ${overflow} px`);
    }
  }
});
