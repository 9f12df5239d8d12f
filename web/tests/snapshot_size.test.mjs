// A full-screen program that started at another size than the browser's: the view draws the
// server's snapshot at the size it was taken at, then takes the session to its own size, and
// the program's redraw at that size fills the screen from its top row. The programs here draw
// as vim does after a resize (clear, then rows separated by CR LF, no new scroll region), one
// having set a scroll region of the whole screen (vim does at start) and one a region that
// leaves its last row for a status line. A region drawn at the wrong size scrolls the redraw
// (vim's first rows were scrolled off the top, the last rows empty).
import { apiCall, env, login, run, shot, until } from "./lib.mjs";
import { live } from "./term.mjs";

const rows = (page) => page.locator(".xterm-rows > div").allInnerTexts();

/** A program on the alternate screen: `region` is the scroll region's bottom, less rows. */
const program = (less) =>
  "draw() { set -- $(stty size); printf '\\033[H\\033[2J'; i=1; " +
  "while [ $i -lt $1 ]; do printf 'row %d\\r\\n' $i; i=$((i+1)); done; printf 'status %sx%s' $1 $2; }; " +
  `set -- $(stty size); printf '\\033[?1049h\\033[1;%dr' $(($1-${less})); ` +
  "trap draw WINCH; draw; while :; do sleep 0.1; done";

await run("snapshot_size", async ({ newPage }) => {
  for (const [less, name] of [
    [0, "whole"],
    [1, "status-line"],
  ]) {
    const t = await apiCall("POST", "/api/terminals", {
      command: ["sh", "-c", program(less)],
      cwd: env.workDir,
      cols: 100,
      rows: 20,
      name: `snap-${name}`,
    });
    const { page } = await newPage({ label: name });
    for (const step of ["opened", "reloaded"]) {
      if (step === "opened") await login(page, `/terminals/${t.id}`);
      else await page.reload();
      await live(page);
      // The view fits its box (larger than 100×20 at 1280×800) and the program redraws.
      const shown = await until(`${name} ${step}: the redraw at the view's size`, async () => {
        const r = await rows(page);
        const status = r.map((l) => l.trim()).find((l) => l.startsWith("status "));
        return status && status !== "status 20x100" && r;
      });
      const [height] = shown.find((l) => l.trim().startsWith("status ")).trim().slice(7).split("x").map(Number);
      const want = Array.from({ length: height - 1 }, (_, i) => `row ${i + 1}`);
      const got = shown.slice(0, height - 1).map((l) => l.trim());
      if (JSON.stringify(got) !== JSON.stringify(want) || shown.length !== height) {
        throw new Error(`${name} ${step}: ${shown.length} rows drawn, the program drew ${height}:\n${shown.join("\n")}`);
      }
      await shot(page, `snapshot-size-${name}-${step}`);
    }
    await apiCall("DELETE", `/api/terminals/${t.id}`);
  }
});
