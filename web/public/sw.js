// The service worker: shows the server's Web Push notifications and, when one is tapped, brings
// the UI to the notification's page (an open window of this server is focused and told to go
// there; else a new one opens). It caches nothing: the UI needs the server anyway. Served from the root (/sw.js) so its
// scope is the whole UI, with `Cache-Control: no-cache` so an update is seen on the next visit.
"use strict";

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("push", (event) => {
  let n = {};
  try {
    n = event.data ? event.data.json() : {};
  } catch {
    n = { title: "claude-manager", body: event.data ? event.data.text() : "" };
  }
  const title = n.title || "claude-manager";
  event.waitUntil(
    self.registration.showNotification(title, {
      body: n.body || "",
      tag: n.tag || undefined,
      renotify: Boolean(n.tag),
      requireInteraction: n.kind === "input" || n.kind === "approval",
      icon: "/icons/icon-192.png",
      badge: "/icons/icon-192.png",
      data: { url: n.url || "/" },
    }),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  // Only pages of this server: a payload cannot send the user elsewhere.
  const target = new URL((event.notification.data && event.notification.data.url) || "/", self.location.origin);
  const url = target.origin === self.location.origin ? target.href : self.location.origin + "/";
  event.waitUntil(
    (async () => {
      const open = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
      for (const client of open) {
        if (new URL(client.url).origin !== self.location.origin) continue;
        // The open UI routes itself (web/src/push.ts): no reload, a live terminal stays attached.
        client.postMessage({ type: "open", url: target.pathname + target.search });
        return client.focus();
      }
      return self.clients.openWindow(url);
    })(),
  );
});
