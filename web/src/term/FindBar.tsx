// A small find bar over the terminal's buffer (scrollback included), using the search addon. It
// takes focus when it opens, so typing searches and Enter goes to the next match (Shift+Enter:
// the previous one); Escape closes it.

import { useLayoutEffect, useRef, useState } from "preact/hooks";
import type { SearchAddon } from "@xterm/addon-search";

export function FindBar(props: { search: SearchAddon; onClose: () => void }) {
  const [q, setQ] = useState("");
  const [miss, setMiss] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  // `autofocus` only works on page load; a bar opened later must take focus itself, and at once:
  // a layout effect runs as the bar is put on the page, where an effect waits for a frame and
  // the first keys typed after the click would go to the shell.
  useLayoutEffect(() => input.current?.focus(), []);
  const find = (text: string, back: boolean, incremental = false) => {
    if (!text) return setMiss(false);
    const found = back ? props.search.findPrevious(text) : props.search.findNext(text, { incremental });
    setMiss(!found);
  };
  const close = () => {
    props.search.clearDecorations();
    props.onClose();
  };
  const onKeyDown = (e: KeyboardEvent) => {
    if (e.key === "Enter") {
      e.preventDefault();
      find(q, e.shiftKey);
    } else if (e.key === "Escape") {
      e.preventDefault();
      close();
    }
  };
  return (
    <div class="find-bar" role="search">
      <input
        type="search"
        aria-label="Find in terminal"
        placeholder="Find…"
        value={q}
        ref={input}
        enterKeyHint="search"
        onInput={(e) => {
          const v = e.currentTarget.value;
          setQ(v);
          find(v, false, true);
        }}
        onKeyDown={onKeyDown}
      />
      <button type="button" aria-label="Previous match" onClick={() => find(q, true)}>
        ↑
      </button>
      <button type="button" aria-label="Next match" onClick={() => find(q, false)}>
        ↓
      </button>
      {miss ? <span class="muted">no match</span> : null}
      <button type="button" class="link" aria-label="Close find" onClick={close}>
        ×
      </button>
    </div>
  );
}
