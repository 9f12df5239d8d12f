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
  oxc: {
    jsx: { runtime: "automatic", importSource: "preact" },
  },
});
