// Reviewing an isolated run: a run of the fake agent edits files in its own git worktree; its
// page gets a "Changes" tab listing each file with a side-by-side diff on a wide screen and a
// unified one on a phone, a link into the read-only file browser, and a merge asked twice that
// lands the work on the repository's branch.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { apiCall, env, login, run, shot, until } from "./lib.mjs";

const repo = path.join(env.workDir, "changes-repo");
const git = (...args) =>
  execFileSync("git", args, {
    cwd: repo,
    env: { ...process.env, GIT_AUTHOR_NAME: "T", GIT_AUTHOR_EMAIL: "t@x", GIT_COMMITTER_NAME: "T", GIT_COMMITTER_EMAIL: "t@x" },
  }).toString();

mkdirSync(repo, { recursive: true });
git("init", "--quiet", "-b", "main");
writeFileSync(path.join(repo, "app.py"), "def hello():\n    return 'hi'\n\nprint(hello())\n");
writeFileSync(path.join(repo, "notes.txt"), "old notes\n");
git("add", "--all");
git("commit", "--quiet", "-m", "start");

await run("changes", async ({ newPage }) => {
  const agent = await apiCall("POST", "/api/agents", {
    name: "isolated-editor",
    command: [env.fakeClaude],
    isolation: "worktree",
    env: { FAKE_CLAUDE_EDIT: "1" },
  });
  const task = await apiCall("POST", "/api/tasks", {
    title: "Greet politely",
    description: "write app.py def hello(): return 'hello there'\nappend notes.txt new line\nwrite docs/guide.md # Guide\nbinary logo.bin",
    agent_id: agent.id,
    project_path: repo,
  });
  const x = await apiCall("POST", `/api/tasks/${task.id}/run`, {});
  await until("the run ends", async () => (await apiCall("GET", `/api/executions/${x.id}`)).status === "succeeded");

  // Wide: the tab, the file list, a side-by-side diff.
  const { page } = await newPage({ label: "wide" });
  await login(page, `/executions/${x.id}`);
  await page.getByRole("tab", { name: /Changes \(4\)/ }).click();
  const changes = page.locator("section.changes");
  for (const f of ["app.py", "notes.txt", "docs/guide.md", "logo.bin"]) {
    await changes.locator(".file-list a", { hasText: f }).waitFor();
  }
  await changes.locator(".file-list li", { hasText: "logo.bin" }).getByText("binary").waitFor();
  await changes.locator("table.diff.split td.add", { hasText: "hello there" }).first().waitFor();
  await changes.locator("table.diff.split td.del", { hasText: "return 'hi'" }).first().waitFor();
  await shot(page, "changes-wide");

  // The file browser from the diff: the agent's version of the file, read-only.
  await changes.locator(".file-diff", { hasText: "docs/guide.md" }).getByRole("link", { name: "view file" }).click();
  await page.locator("pre.file-text", { hasText: "# Guide" }).waitFor();
  await shot(page, "changes-file");
  await page.getByRole("link", { name: /←/ }).click();
  await page.locator(".dir-list a", { hasText: "guide.md" }).waitFor();
  await page.goBack();
  await page.goBack();

  // Phone: the same diff, unified.
  const phone = await newPage({ label: "phone", viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  await login(phone.page, `/executions/${x.id}`);
  await phone.page.getByRole("tab", { name: /Changes/ }).click();
  await phone.page.locator("pre.diff.unified .add", { hasText: "hello there" }).first().waitFor();
  if (await phone.page.locator("table.diff.split").count()) throw new Error("side-by-side diff on a phone");
  await shot(phone.page, "changes-phone");

  // Merge, asked twice; the repository's branch now has the work.
  await page.getByRole("tab", { name: /Changes/ }).click();
  await changes.getByRole("button", { name: "Merge" }).click();
  await changes.getByText("Merge into main?").waitFor();
  await changes.getByRole("button", { name: "Yes, merge" }).click();
  await changes.locator(".notice", { hasText: "Merged into main" }).waitFor();
  await changes.locator(".badge", { hasText: "merged" }).waitFor();
  await shot(page, "changes-merged");
  if (!readFileSync(path.join(repo, "app.py"), "utf8").includes("hello there")) throw new Error("merge did not land");
  if (git("status", "--porcelain").trim()) throw new Error("checkout left dirty");

  // A second run, discarded (asked twice): the tab says so, with nothing left to merge or
  // discard, and no failed request reaches the console.
  const y = await apiCall("POST", `/api/tasks/${task.id}/run`, {});
  await until("the second run ends", async () => (await apiCall("GET", `/api/executions/${y.id}`)).status === "succeeded");
  await page.goto(`${env.base}/executions/${y.id}`);
  await page.getByRole("tab", { name: /Changes/ }).click();
  await changes.getByRole("button", { name: "Discard" }).click();
  await changes.getByText("Delete the worktree and its work?").waitFor();
  await changes.getByRole("button", { name: /^Yes/ }).click();
  await changes.locator(".notice", { hasText: "Discarded" }).waitFor();
  await changes.locator(".badge", { hasText: "discarded" }).waitFor();
  if (await changes.getByRole("button", { name: "Discard" }).count()) throw new Error("Discard still offered after a discard");
  if (await changes.getByRole("button", { name: "Merge" }).count()) throw new Error("Merge still offered after a discard");
});
