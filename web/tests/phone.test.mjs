// The terminal on a phone (390×844, touch): the layout fits the width, and the key bar's Ctrl,
// ^C and arrow keys send the right bytes without taking focus from the terminal.
import { env, login, run, shot, until } from "./lib.mjs";

const rand = Math.random().toString(36).slice(2, 8);
const screen = (page) => page.locator(".xterm-rows").innerText();
const count = (text, needle) => text.split(needle).length - 1;
const seen = (page, needle, n = 1) =>
  until(`${needle} ×${n}`, async () => count(await screen(page), needle) === n);

async function typeLine(page, line) {
  await page.keyboard.type(line);
  await page.keyboard.press("Enter");
}

await run("phone", async ({ newPage }) => {
  const { page } = await newPage({
    label: "phone",
    viewport: { width: 390, height: 844 },
    isMobile: true,
    hasTouch: true,
  });
  await login(page, "/terminals");
  await page.locator('input[name="cwd"]').fill(env.workDir);
  await page.locator('input[name="command"]').fill("bash --norc --noprofile");
  await page.getByRole("button", { name: "Open terminal" }).tap();
  await page.waitForURL(/\/terminals\/[^/?]+$/);
  await page.locator('.conn[data-state="live"]').waitFor();

  // Tap the terminal to type into it.
  await page.locator(".xterm").tap();
  await page.locator(".xterm-helper-textarea").focus();
  const focused = () => page.evaluate(() => document.activeElement?.classList.contains("xterm-helper-textarea"));

  // Sticky Ctrl, then "c" typed on the keyboard: an interrupt. The marker is printed by the
  // foreground process itself, so once it shows, ^C reaches the sleep (not the shell, which may
  // not have handed the terminal to its child yet).
  await typeLine(page, `sh -c 'echo sleeping-$((1*5))-${rand}; exec sleep 600'`);
  await seen(page, `sleeping-5-${rand}`);
  const ctrl = page.getByRole("button", { name: "Ctrl", exact: true });
  await ctrl.tap();
  await page.locator('.key-bar button[aria-label="Ctrl"][aria-pressed="true"]').waitFor();
  if (!(await focused())) throw new Error("the Ctrl key took focus from the terminal");
  await page.keyboard.type("c");
  await page.locator('.key-bar button[aria-label="Ctrl"][aria-pressed="false"]').waitFor();
  await typeLine(page, `echo after-$((1+1))-${rand}`);
  await seen(page, `after-2-${rand}`);

  // The ^C button.
  await typeLine(page, `sh -c 'echo napping-$((3*3))-${rand}; exec sleep 601'`);
  await seen(page, `napping-9-${rand}`);
  await page.getByRole("button", { name: "Ctrl-C" }).tap();
  await typeLine(page, `echo again-$((2+2))-${rand}`);
  await seen(page, `again-4-${rand}`);

  // The bar has Shift+Tab (Claude Code's mode switch) and PgUp/PgDn; which keys show is a setting.
  for (const name of ["Shift-Tab", "Page Up", "Page Down"]) await page.getByRole("button", { name, exact: true }).waitFor();
  await page.getByRole("button", { name: "Terminal settings" }).tap();
  await page.getByRole("checkbox", { name: "key bar: Home" }).check();
  await page.getByRole("checkbox", { name: "key bar: Tilde" }).uncheck();
  await page.getByRole("button", { name: "Home", exact: true }).waitFor();
  await page.locator('.key-bar button[aria-label="Tilde"]').waitFor({ state: "detached" });
  await shot(page, "phone-terminal-settings");
  await page.getByRole("button", { name: "Close settings" }).tap();
  await page.locator(".xterm").tap();
  await page.locator(".xterm-helper-textarea").focus();

  // Up recalls the last command (ESC [ A): running it again prints the marker a second time.
  await page.getByRole("button", { name: "Up", exact: true }).tap();
  if (!(await focused())) throw new Error("the Up key took focus from the terminal");
  await page.keyboard.press("Enter");
  await seen(page, `again-4-${rand}`, 2);

  // The terminal fits the phone: no wider than the screen, and the page does not scroll sideways.
  const box = await page.locator(".xterm").boundingBox();
  if (!box || box.x < 0 || box.x + box.width > 390) throw new Error(`terminal box ${JSON.stringify(box)} exceeds 390 px`);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 0) throw new Error(`the page overflows horizontally by ${overflow} px`);
  // The toolbar is one row, and "+ New terminal" stays on screen beside the tabs.
  const bar = await page.locator(".term-toolbar").boundingBox();
  if (!bar || bar.height > 44) throw new Error(`the toolbar wraps: ${JSON.stringify(bar)}`);
  const stop = await page.getByRole("button", { name: "Stop", exact: true }).boundingBox();
  if (!stop || stop.x + stop.width > 390) throw new Error(`Stop is off screen: ${JSON.stringify(stop)}`);
  const plus = await page.getByRole("button", { name: "New terminal" }).boundingBox();
  if (!plus || plus.x + plus.width > 390) throw new Error(`"+ New terminal" is off screen: ${JSON.stringify(plus)}`);
  const keybar = await page.locator(".key-bar").boundingBox();
  if (!keybar || keybar.y + keybar.height > 844) throw new Error(`key bar ${JSON.stringify(keybar)} is off screen`);
  await shot(page, "phone-terminal");

  // The PTY follows the screen: `stty size` gives the rows drawn and a phone's width, and
  // rotating to landscape widens it.
  const portrait = await sttySize(page, "p");
  const drawn = await page.locator(".xterm-rows > div").count();
  if (portrait.rows !== drawn || portrait.cols < 30 || portrait.cols > 60) {
    throw new Error(`portrait PTY is ${JSON.stringify(portrait)}, ${drawn} rows drawn`);
  }
  await page.setViewportSize({ width: 844, height: 390 });
  await until("the terminal to follow the rotation", async () => (await page.locator(".xterm-rows > div").count()) < drawn);
  const landscape = await sttySize(page, "l");
  if (landscape.cols <= portrait.cols) throw new Error(`landscape PTY ${JSON.stringify(landscape)} is not wider`);
  if (landscape.rows < 20) throw new Error(`landscape leaves ${landscape.rows} rows; at least 20 expected`);
  await shot(page, "phone-landscape");
});

/** The PTY's size as the shell sees it (a computed marker, so only the output line matches). */
async function sttySize(page, tag) {
  await typeLine(page, `echo ${tag}-$(stty size | tr ' ' x)-end`);
  const m = await until(`${tag} stty size`, async () =>
    (await screen(page)).match(new RegExp(`${tag}-(\\d+)x(\\d+)-end`)),
  );
  return { rows: Number(m[1]), cols: Number(m[2]) };
}
