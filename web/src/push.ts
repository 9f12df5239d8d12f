// Web Push in the browser: the service worker (/sw.js, registered on load so the UI is
// installable — registering asks nothing of the user), and subscribing this browser to the
// server's notifications, which asks for permission only when the user presses the button.

import { api } from "./api";
import { navigate } from "./router";

export type PushState = "unsupported" | "insecure" | "denied" | "off" | "on";

/** Registers the service worker and lets it open pages in this window (a tapped notification). */
export function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) return;
  navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {
    /* no service worker (e.g. plain http on a LAN address): the UI works without it */
  });
  navigator.serviceWorker.addEventListener("message", (e: MessageEvent) => {
    const d = e.data as { type?: string; url?: string } | null;
    if (d?.type === "open" && typeof d.url === "string" && d.url.startsWith("/")) navigate(d.url);
  });
}

function supported(): boolean {
  return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

async function registration(): Promise<ServiceWorkerRegistration> {
  return navigator.serviceWorker.ready;
}

/** Where this browser stands, without asking anything. */
export async function pushState(): Promise<PushState> {
  if (!window.isSecureContext) return "insecure";
  if (!supported()) return "unsupported";
  if (Notification.permission === "denied") return "denied";
  const sub = await (await registration()).pushManager.getSubscription();
  return sub ? "on" : "off";
}

function keyBytes(b64url: string): Uint8Array {
  const b64 = b64url.replace(/-/g, "+").replace(/_/g, "/");
  const raw = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

/** Asks for permission (the button's click is the user gesture), subscribes, tells the server. */
export async function enablePush(): Promise<PushState> {
  const permission = await Notification.requestPermission();
  if (permission !== "granted") return permission === "denied" ? "denied" : "off";
  const { public_key } = await api.get<{ public_key: string }>("/api/push/key");
  const reg = await registration();
  let sub = await reg.pushManager.getSubscription();
  // A subscription made for another server key (the data dir was replaced) cannot receive ours.
  const current = sub?.options.applicationServerKey;
  if (sub && current && btoa(String.fromCharCode(...new Uint8Array(current))) !== btoa(String.fromCharCode(...keyBytes(public_key)))) {
    await sub.unsubscribe();
    sub = null;
  }
  sub ??= await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(public_key) as BufferSource });
  await api.post("/api/push/subscriptions", sub.toJSON());
  return "on";
}

/** Unsubscribes this browser, here and on the server. */
export async function disablePush(): Promise<PushState> {
  const sub = await (await registration()).pushManager.getSubscription();
  if (sub) {
    try {
      await api.del("/api/push/subscriptions", { endpoint: sub.endpoint });
    } catch {
      /* already gone on the server (e.g. dropped after the push service expired it) */
    }
    await sub.unsubscribe();
  }
  return "off";
}

export const sendTestPush = () => api.post<{ subscriptions: number; webhook: boolean }>("/api/push/test");
