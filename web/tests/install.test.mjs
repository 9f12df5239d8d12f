// The UI is installable and ready for notifications: the manifest is valid and its icons load,
// the service worker registers at the root scope (asking nothing), and the bell's panel offers
// to turn notifications on without the page ever having asked for permission.
import { env, login, run, shot, until, WAIT } from "./lib.mjs";

await run("install", async ({ newPage }) => {
  // The manifest, as an installing browser reads it.
  const resp = await fetch(env.base + "/manifest.webmanifest");
  if (resp.status !== 200) throw new Error(`manifest: HTTP ${resp.status}`);
  const type = resp.headers.get("content-type") ?? "";
  if (!type.startsWith("application/manifest+json")) throw new Error(`manifest content type ${type}`);
  const m = await resp.json();
  for (const [k, want] of [["start_url", "/"], ["display", "standalone"], ["scope", "/"]]) {
    if (m[k] !== want) throw new Error(`manifest ${k} = ${m[k]}, want ${want}`);
  }
  if (!m.name || !/^#[0-9a-f]{6}$/i.test(m.theme_color ?? "") || !m.background_color) {
    throw new Error(`manifest name/colours: ${JSON.stringify(m)}`);
  }
  const want = [["192x192", "any"], ["512x512", "any"], ["512x512", "maskable"]];
  for (const [sizes, purpose] of want) {
    if (!m.icons.some((i) => i.sizes === sizes && (i.purpose ?? "any").split(" ").includes(purpose))) {
      throw new Error(`manifest has no ${sizes} ${purpose} icon`);
    }
  }

  const { page } = await newPage({ label: "install" });
  await login(page);
  // Every icon loads as a PNG of its declared size.
  const sizes = await page.evaluate(async (icons) => {
    const out = [];
    for (const i of icons) {
      const img = new Image();
      img.src = i.src;
      await img.decode();
      out.push(`${img.naturalWidth}x${img.naturalHeight}`);
    }
    return out;
  }, m.icons);
  m.icons.forEach((i, n) => {
    if (sizes[n] !== i.sizes) throw new Error(`${i.src} is ${sizes[n]}, manifest says ${i.sizes}`);
  });
  const linked = await page.locator('link[rel="manifest"]').getAttribute("href");
  if (linked !== "/manifest.webmanifest") throw new Error(`index.html links manifest ${linked}`);

  // The service worker: registered on load, at the root scope, served fresh.
  const sw = await page.evaluate(async () => {
    const reg = await navigator.serviceWorker.ready;
    return { scope: reg.scope, script: reg.active?.scriptURL ?? "" };
  });
  if (sw.scope !== env.base + "/" || sw.script !== env.base + "/sw.js") {
    throw new Error(`service worker ${JSON.stringify(sw)}`);
  }
  const swResp = await fetch(env.base + "/sw.js");
  const swType = swResp.headers.get("content-type") ?? "";
  if (!swType.startsWith("text/javascript") && !swType.startsWith("application/javascript")) {
    throw new Error(`sw.js content type ${swType}`);
  }
  if (swResp.headers.get("cache-control") !== "no-cache") {
    throw new Error(`sw.js cache-control ${swResp.headers.get("cache-control")}`);
  }

  // Nothing asked for permission on load; the bell offers it.
  const permission = await page.evaluate(() => Notification.permission);
  if (permission !== "default") throw new Error(`permission already ${permission} after load`);
  await page.getByRole("button", { name: "notifications" }).click();
  const dialog = page.getByRole("dialog", { name: "Notifications" });
  await dialog.getByRole("button", { name: "Turn on for this device" }).waitFor({ timeout: WAIT });
  await shot(page, "notifications-panel");
  await until("the permission is still unasked", async () =>
    (await page.evaluate(() => Notification.permission)) === "default",
  );

  // On a phone, the panel fits the screen.
  const { page: phone } = await newPage({ label: "install-phone", viewport: { width: 390, height: 844 } });
  await login(phone);
  await phone.getByRole("button", { name: "notifications" }).click();
  const box = await phone.getByRole("dialog", { name: "Notifications" }).boundingBox();
  if (!box || box.x < 0 || box.x + box.width > 390) throw new Error(`panel off screen: ${JSON.stringify(box)}`);
  await shot(phone, "notifications-panel-phone");
});
