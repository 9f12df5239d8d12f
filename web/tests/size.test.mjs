// One terminal, two browsers of different sizes (DESIGN "Size with several viewers"): a desktop
// (1280×800) and a phone (390×844). The phone joining does not resize the session, the desktop's
// view is not re-wrapped, the phone renders at the session's size and says who set it; "Fit to my
// window" on the phone takes the size and the desktop is told. Then a full-screen program (the
// alternate screen) survives a reload of the page — the view is drawn from the server's snapshot,
// not from a replay that starts mid-screen — and when it exits the shell's screen is back. Last,
// the desktop's page is away while the phone's reloads: the phone does not take the size.
import { apiCall, env, login, run, shot, until } from "./lib.mjs";

const rand = Math.random().toString(36).slice(2, 8);
const screen = (page) => page.locator(".xterm-rows").innerText();
const rows = (page) => page.locator(".xterm-rows > div").allInnerTexts();
const live = (page) => page.locator('.conn[data-state="live"]').waitFor();

async function typeLine(page, line) {
  await page.locator(".xterm-helper-textarea").focus();
  await page.keyboard.type(line);
  await page.keyboard.press("Enter");
}

/** The PTY's size as the shell sees it (a computed marker, so only the output line matches). */
async function sttySize(page, tag) {
  await typeLine(page, `echo ${tag}-$(stty size | tr ' ' x)-end`);
  const m = await until(`${tag} stty size`, async () =>
    (await screen(page)).match(new RegExp(`${tag}-(\\d+)x(\\d+)-end`)),
  );
  return { rows: Number(m[1]), cols: Number(m[2]) };
}

await run("size", async ({ newPage }) => {
  const t = await apiCall("POST", "/api/terminals", {
    command: ["bash", "--norc", "--noprofile"],
    cwd: env.workDir,
    name: `size-${rand}`,
  });
  const path = `/terminals/${t.id}`;

  const { page: desk } = await newPage({ label: "desktop" });
  await login(desk, path);
  await live(desk);
  const deskSize = await sttySize(desk, "d");
  if (deskSize.cols < 100) throw new Error(`desktop PTY is only ${JSON.stringify(deskSize)}`);
  // A line as wide as the desktop's terminal less two: one row on the desktop, three on a phone
  // that re-wrapped it.
  const wide = deskSize.cols - 2;
  await typeLine(desk, `printf 'W%.0s' $(seq 1 ${wide}); echo`);
  const line = "W".repeat(wide);
  await until("the wide line on one row", async () => (await rows(desk)).some((r) => r.trim() === line));

  // The phone joins: the session keeps the desktop's size.
  const { page: phone } = await newPage({
    label: "phone",
    viewport: { width: 390, height: 844 },
    userAgent:
      "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    isMobile: true,
    hasTouch: true,
  });
  await login(phone, path);
  await live(phone);
  const told = phone.getByTestId("size-by-other");
  await told.waitFor();
  const tellsSize = `${deskSize.cols}×${deskSize.rows}`;
  if (!(await told.innerText()).includes(tellsSize)) throw new Error(`phone says ${await told.innerText()}, expected ${tellsSize}`);
  // And who set it: the desktop's browser, by name.
  if (!(await told.innerText()).includes("Chrome on Linux")) throw new Error(`phone says ${await told.innerText()}, expected the desktop's browser`);
  // The phone renders at the session's size: the wide line is one row there too (scaled or
  // scrolled, never re-wrapped), and it has the session's rows.
  await until("the wide line on one row on the phone", async () => (await rows(phone)).some((r) => r.trim() === line));
  const phoneRows = await phone.locator(".xterm-rows > div").count();
  if (phoneRows !== deskSize.rows) throw new Error(`phone draws ${phoneRows} rows, the session has ${deskSize.rows}`);
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 0) throw new Error(`the phone's page overflows sideways by ${overflow} px`);
  // The line that says so has a row of its own: the buttons stay on one row and on screen, Stop
  // included (the title gives way).
  const boxOf = (name) => phone.getByRole("button", { name, exact: true }).boundingBox();
  const [readOnly, stop] = [await boxOf("Read-only"), await boxOf("Stop")];
  if (!readOnly || !stop || Math.abs(readOnly.y - stop.y) > 2 || stop.x + stop.width > 390) {
    throw new Error(`the phone's toolbar wraps or overflows: Read-only ${JSON.stringify(readOnly)}, Stop ${JSON.stringify(stop)}`);
  }
  await shot(phone, "size-phone-joined");
  // The desktop was not resized, nor told it lost the size.
  if (JSON.stringify(await sttySize(desk, "d2")) !== JSON.stringify(deskSize)) throw new Error("the phone joining resized the PTY");
  if (await desk.getByTestId("size-by-other").count()) throw new Error("the desktop says another viewer set the size");
  if (!(await rows(desk)).some((r) => r.trim() === line)) throw new Error("the desktop's view was re-wrapped");
  await shot(desk, "size-desktop-with-phone");

  // "Fit to my window" on the phone: the session takes the phone's size; the desktop is told.
  await phone.getByRole("button", { name: "Fit to my window" }).tap();
  await told.waitFor({ state: "detached" });
  const deskTold = desk.getByTestId("size-by-other");
  await deskTold.waitFor();
  // The phone's layout settles after the fit (its own notice goes away and it fits again), so
  // the PTY's size is read until the desktop shows that same size.
  let probe = 0;
  const phoneSize = await until("the desktop to show the phone's size", async () => {
    const size = await sttySize(phone, `p${probe++}`);
    return (await deskTold.innerText()).includes(`${size.cols}×${size.rows}`) && size;
  });
  if (phoneSize.cols >= deskSize.cols || phoneSize.cols < 30) throw new Error(`phone's PTY ${JSON.stringify(phoneSize)}`);
  if (!(await deskTold.innerText()).includes("Chrome on Android")) throw new Error(`desktop says ${await deskTold.innerText()}, expected the phone's browser`);
  await shot(phone, "size-phone-fitted");
  await shot(desk, "size-desktop-told");
  // And back: the desktop takes it again.
  await desk.getByRole("button", { name: "Fit to my window" }).click();
  await deskTold.waitFor({ state: "detached" });
  await told.waitFor();
  if (JSON.stringify(await sttySize(desk, "d3")) !== JSON.stringify(deskSize)) throw new Error("the desktop did not get its size back");

  // A full-screen program in the alternate screen, busy enough that the ring (16 KiB in this
  // test) starts mid-screen.
  await typeLine(
    desk,
    `clear; echo shell-${rand}-$((2+3)); printf '\\033[?1049h\\033[H\\033[2J'; ` +
      `for i in $(seq 1 2000); do printf '\\033[3;1H\\033[1;32mframe %s\\033[0m \\033(0lqqk\\033(B' $i; done; ` +
      `printf '\\033[1;1HFULL-%s 日本語' $((6*7)); read x; printf '\\033[?1049l'; echo back-$((3*4))`,
  );
  await until("the program on the desktop", async () => (await screen(desk)).includes("FULL-42"));
  for (const [page, name] of [
    [desk, "desktop"],
    [phone, "phone"],
  ]) {
    await page.reload();
    await live(page);
    const text = await until(`the program after reload (${name})`, async () => {
      const s = await screen(page);
      return s.includes("FULL-42") && s;
    });
    if (!text.includes("frame 2000 ┌──┐")) throw new Error(`${name} after reload:\n${text}`);
    if (text.includes(`shell-${rand}-5`) || text.includes("frame 1999")) throw new Error(`${name} shows a replay, not the screen:\n${text}`);
    await shot(page, `size-fullscreen-reloaded-${name}`);
  }
  // The program exits: the shell's screen under it comes back on both.
  await typeLine(desk, "");
  for (const page of [desk, phone]) {
    await until("the shell back", async () => {
      const s = await screen(page);
      return s.includes(`shell-${rand}-5`) && s.includes("back-12") && !s.includes("FULL-42");
    });
  }
  await shot(desk, "size-fullscreen-exited-desktop");
  await shot(phone, "size-fullscreen-exited-phone");

  // The desktop's page goes away (closed, or on its way through a reload) while the phone's page
  // reloads: the phone does not take the size by attaching, and the desktop's next page holds it.
  await desk.close();
  await phone.reload();
  await live(phone);
  await told.waitFor();
  if (!(await told.innerText()).includes(tellsSize)) throw new Error(`phone says ${await told.innerText()}, expected ${tellsSize}`);
  await shot(phone, "size-phone-while-the-desktop-is-away");
  const { page: deskAgain } = await newPage({ label: "desktop again" });
  await login(deskAgain, path);
  await live(deskAgain);
  if (JSON.stringify(await sttySize(deskAgain, "d4")) !== JSON.stringify(deskSize)) throw new Error("the desktop's size was lost while it was away");
  if (await deskAgain.getByTestId("size-by-other").count()) throw new Error("the desktop's page back says another viewer set the size");
});
