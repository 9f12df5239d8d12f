// Per-session caps in the forms: the new-terminal form and the agent form take a memory cap in
// MiB or GiB (sent in bytes) and a process cap. The server here runs without session cgroups
// (tests/web_ui.rs), so it cannot enforce a cap and says 422 naming the field: the form shows
// that message under the field, and nothing is started. A typing mistake is caught before sending.
import { apiCall, env, login, run, shot } from "./lib.mjs";

const MIB = 1 << 20;
const refused = [/status of 422/];

await run("caps", async ({ newPage }) => {
  for (const [label, viewport] of [
    ["desktop", { width: 1280, height: 800 }],
    ["phone", { width: 390, height: 844 }],
  ]) {
    const { page } = await newPage({ label, viewport, allow: refused });
    await login(page, "/terminals");
    const form = page.locator('form[aria-label="new terminal"]');
    const sent = [];
    page.on("request", (r) => {
      if (r.method() === "POST" && r.url().endsWith("/api/terminals")) sent.push(JSON.parse(r.postData()));
    });
    await form.locator('input[name="cwd"]').fill(env.workDir);
    await form.locator('input[name="command"]').fill("true");
    await form.locator('input[name="memory_max"]').fill("64");
    await form.locator('input[name="pids_max"]').fill("32");
    await form.getByRole("button", { name: "Open terminal" }).click();

    // The server's refusal, under the memory field (the first cap it names).
    const memoryError = form.locator('.field-error[data-field="memory_max_bytes"]');
    await memoryError.waitFor();
    const text = await memoryError.textContent();
    if (!/session cgroups/.test(text) || !/operations\.md/.test(text))
      throw new Error(`${label}: the memory field shows ${JSON.stringify(text)}, not the server's reason`);
    if (!(await form.locator(".field.invalid", { has: page.locator('input[name="memory_max"]') }).count()))
      throw new Error(`${label}: the memory field is not marked invalid`);
    if (await form.locator(".error").count()) throw new Error(`${label}: the cap error is shown twice (banner too)`);
    // What went over the wire: bytes, and the process cap as typed.
    const body = sent.at(-1);
    if (body?.memory_max_bytes !== 64 * MIB || body?.pids_max !== 32)
      throw new Error(`${label}: sent ${JSON.stringify(body)}, wanted 64 MiB in bytes and pids_max 32`);
    await shot(page, `caps-terminal-refused-${label}`);

    // GiB is a unit of its own; with only a process cap, the message moves to that field.
    await form.locator('select[name="memory_unit"]').selectOption("GiB");
    await form.locator('input[name="memory_max"]').fill("");
    await form.getByRole("button", { name: "Open terminal" }).click();
    await form.locator('.field-error[data-field="pids_max"]', { hasText: "session cgroups" }).waitFor();
    if (await memoryError.count()) throw new Error(`${label}: the memory field still shows an error`);
    if (sent.at(-1)?.memory_max_bytes !== undefined || sent.at(-1)?.pids_max !== 32)
      throw new Error(`${label}: sent ${JSON.stringify(sent.at(-1))}`);

    // A typing mistake never reaches the server.
    const before = sent.length;
    await form.locator('input[name="memory_max"]').fill("lots");
    await form.getByRole("button", { name: "Open terminal" }).click();
    await form.locator('.field-error[data-field="memory_max_bytes"]', { hasText: "positive number of GiB" }).waitFor();
    if (sent.length !== before) throw new Error(`${label}: a malformed cap was sent`);
  }
  // Nothing was started for any of the refusals.
  const terms = await apiCall("GET", "/api/terminals");
  if (terms.total !== 0) throw new Error(`refused terminals were started: ${JSON.stringify(terms)}`);

  // The agent form: 1.5 GiB is stored in bytes and shown again as 1536 MiB when edited.
  const { page } = await newPage({ label: "agent", allow: refused });
  await login(page, "/agents");
  await page.getByRole("button", { name: "New agent" }).click();
  const form = page.locator("form.agent-form");
  await form.locator('input[name="name"]').fill("capped");
  await form.locator('input[name="command"]').fill(env.fakeClaude);
  await form.locator('input[name="memory_max"]').fill("1.5");
  await form.locator('select[name="memory_unit"]').selectOption("GiB");
  await form.locator('input[name="pids_max"]').fill("100");
  await shot(page, "caps-agent-form");
  await form.getByRole("button", { name: "Create agent" }).click();
  await page.locator("h1", { hasText: "capped" }).waitFor();
  const agentId = page.url().match(/\/agents\/(\d+)/)[1];
  const stored = await apiCall("GET", `/api/agents/${agentId}`);
  if (stored.memory_max_bytes !== 1536 * MIB || stored.pids_max !== 100)
    throw new Error(`agent stored ${stored.memory_max_bytes} / ${stored.pids_max}`);

  // Its session is refused on this server, and says why.
  await page.getByRole("button", { name: "Open session" }).click();
  await page.locator(".error", { hasText: "session cgroups" }).waitFor();

  // Edit: the caps come back in the form; one below the server's floor is refused at that field.
  await page.getByRole("button", { name: "Edit" }).click();
  const edit = page.locator("form.agent-form");
  const memory = edit.locator('input[name="memory_max"]');
  if ((await memory.inputValue()) !== "1536" || (await edit.locator('select[name="memory_unit"]').inputValue()) !== "MiB")
    throw new Error(`edit form shows ${await memory.inputValue()}`);
  if ((await edit.locator('input[name="pids_max"]').inputValue()) !== "100") throw new Error("pids_max not shown when editing");
  await memory.fill("1");
  await edit.getByRole("button", { name: "Save" }).click();
  await edit.locator('.field-error[data-field="memory_max_bytes"]').waitFor();
  await shot(page, "caps-agent-refused");
  // Cleared caps are saved as none.
  await memory.fill("");
  await edit.locator('input[name="pids_max"]').fill("");
  await edit.getByRole("button", { name: "Save" }).click();
  await edit.waitFor({ state: "detached" });
  const cleared = await apiCall("GET", `/api/agents/${agentId}`);
  if (cleared.memory_max_bytes != null || cleared.pids_max != null)
    throw new Error(`caps not cleared: ${JSON.stringify(cleared)}`);
});
