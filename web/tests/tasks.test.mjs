// The main path a user takes: define an agent in the form, create a task, run it with the agent,
// watch the run succeed with its result and cost, find it on the task, and deep-link back to it.
// The agent is the fake Claude Code (tests/fixtures/fake-claude): its result is "Done: <prompt>"
// (prompt = title, blank line, description), its cost $0.0123, its usage 10 in / 20 out tokens.
import { env, login, run, shot } from "./lib.mjs";

const AGENT = "fake-coder";
const TITLE = "Write the README";
const DESCRIPTION = "Say hello.";

await run("tasks", async ({ newPage }) => {
  const { page } = await newPage({ label: "tasks" });
  await login(page, "/agents");

  // An agent through the form: the fake CLI as its command, the work dir as its project.
  await page.getByRole("button", { name: "New agent" }).click();
  const form = page.locator("form.agent-form");
  await form.locator('input[name="name"]').fill(AGENT);
  await form.locator('input[name="command"]').fill(env.fakeClaude);
  await form.locator('input[name="project_dir"]').fill(env.workDir);
  await form.getByRole("button", { name: "Create agent" }).click();
  await page.locator("h1", { hasText: AGENT }).waitFor();
  await page.locator("dd.restart", { hasText: "never" }).waitFor();
  await page.locator("dd.idle", { hasText: "30m 0s" }).waitFor();
  await shot(page, "tasks-agent");

  // A task through the form, without an agent: the run picks one.
  await page.getByRole("link", { name: "Tasks" }).first().click();
  await page.getByRole("button", { name: "New task" }).click();
  const tf = page.locator("form.task-form");
  await tf.locator('input[name="title"]').fill(TITLE);
  await tf.locator('textarea[name="description"]').fill(DESCRIPTION);
  await tf.locator('input[name="tags"]').fill("docs, ui-test");
  await tf.getByRole("button", { name: "Create task" }).click();
  await page.locator("h1.task-title", { hasText: TITLE }).waitFor();
  const taskUrl = page.url();

  // Run it with the agent from the task page; the reply names the new execution.
  const runCard = page.locator("form.run-card");
  await runCard.locator('select[name="run_agent"]').selectOption({ label: AGENT });
  await runCard.getByRole("button", { name: "Run" }).click();
  const started = runCard.locator(".started a");
  await started.waitFor();
  const execId = (await started.textContent()).match(/#(\d+)/)[1];
  await started.click();

  // The execution page: the run reaches succeeded, with result, cost and usage, and a timeline.
  const checkRun = async (label) => {
    await page.locator("h1", { hasText: `Agent run #${execId}` }).waitFor();
    await page.locator(".page-head .badge", { hasText: "succeeded" }).waitFor();
    await page.locator("pre.result-text", { hasText: `Done: ${TITLE}` }).waitFor();
    await page.locator("dd.cost", { hasText: "$0.0123" }).waitFor();
    await page.locator("dd.usage", { hasText: "10 in · 20 out" }).waitFor();
    await page.locator(".stream", { hasText: "complete" }).waitFor();
    await page.locator(".ev-assistant pre.ev-text", { hasText: `You asked: ${TITLE}` }).waitFor();
    // Tool calls and results are there, collapsed.
    const tool = page.locator("details.ev-tool").first();
    await tool.locator("summary", { hasText: "Bash" }).waitFor();
    if (await tool.evaluate((d) => d.open)) throw new Error(`${label}: tool call shown expanded`);
    await page.locator("details.ev-result summary", { hasText: "Bash result" }).waitFor();
    await page.locator(".ev-final", { hasText: "2 turns" }).waitFor();
  };
  await checkRun("live");
  // Expanding a tool call shows its input.
  await page.locator("details.ev-tool summary").first().click();
  await page.locator("details.ev-tool pre", { hasText: '"command": "ls"' }).waitFor();
  await shot(page, "tasks-execution");

  // The task lists the execution, and has moved to succeeded with it.
  await page.locator("dl.facts a", { hasText: TITLE }).click();
  await page.locator("h1.task-title", { hasText: TITLE }).waitFor();
  await page.locator(`tr[data-execution="${execId}"] .badge`, { hasText: "succeeded" }).waitFor();
  await page.locator(".page-head .badge", { hasText: "succeeded" }).waitFor();
  if (page.url() !== taskUrl) throw new Error(`task link went to ${page.url()}, expected ${taskUrl}`);
  await shot(page, "tasks-task");

  // Deep link: a fresh load of the execution page shows the same (replayed events, stored result).
  await page.goto(`${env.base}/executions/${execId}`);
  await checkRun("reload");
});
