// The browser tab's title: how many agents need you, then what the page shows (an open
// terminal's own title), then the app's name — so a row of browser tabs says which is which.

const APP = "claude-manager";
let needsYou = 0;
let page: string | null = null;

function show() {
  const base = page ? `${page} · ${APP}` : APP;
  document.title = needsYou ? `(${needsYou}) ${base}` : base;
}

/** The count of agents that need you (`useNeedsYouTitle`). */
export function setNeedsYouCount(n: number) {
  needsYou = n;
  show();
}

/** What the page shows, or `null` for the app's name alone. */
export function setPageTitle(title: string | null) {
  page = title;
  show();
}
