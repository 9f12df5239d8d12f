import { defineConfig } from "vite";

// The UI is embedded in the binary by exact file name (src/http/assets.rs), so the output is a
// flat, hashed set of files under dist/ and nothing is inlined as a script (CSP: script-src 'self').
export default defineConfig({
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    target: "es2022",
  },
  // `npm run dev`: the UI with hot reload on :5173, the API from a server on :8000 (run it with
  // CM_ALLOWED_ORIGINS=http://localhost:5173 so its Origin check admits the dev page).
  server: {
    proxy: {
      "/api": { target: "http://127.0.0.1:8000", ws: true },
    },
  },
  oxc: {
    jsx: { runtime: "automatic", importSource: "preact" },
  },
});
