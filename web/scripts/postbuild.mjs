// Run after every build:
// 1. gzip every .js/.css/.html/.svg file beside itself (`x.js.gz`): the server sends these to
//    browsers that accept gzip, so the UI loads compressed even without a proxy in front.
// 2. Budget check: the JavaScript a first page load needs (the entry module index.html names,
//    plus every module it imports statically) must stay ≤ 600 KB gzipped.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import path from "node:path";

const BUDGET = 600 * 1024;
const dist = path.resolve(import.meta.dirname, "../dist");
const html = readFileSync(path.join(dist, "index.html"), "utf8");

for (const entry of readdirSync(dist, { recursive: true })) {
  const file = path.join(dist, String(entry));
  if (!/\.(js|css|html|svg)$/.test(file)) continue;
  writeFileSync(`${file}.gz`, gzipSync(readFileSync(file), { level: 9 }));
}

const seen = new Set();
const queue = [...html.matchAll(/<script[^>]*\bsrc="\/([^"]+)"/g)].map((m) => m[1]);
const inline = [...html.matchAll(/<script(?![^>]*\bsrc=)[^>]*>/g)];
if (inline.length) {
  console.error("index.html has an inline <script>: the CSP (script-src 'self') would block it");
  process.exit(1);
}
let total = 0;
while (queue.length) {
  const rel = queue.shift();
  if (seen.has(rel)) continue;
  seen.add(rel);
  const code = readFileSync(path.join(dist, rel));
  total += gzipSync(code, { level: 9 }).length;
  // Static imports between chunks: `from"./x.js"` / `import"./x.js"` (dynamic import() excluded).
  for (const m of code.toString("utf8").matchAll(/(?:\bfrom|\bimport)\s*["'](\.\/[^"']+\.js)["']/g)) {
    queue.push(path.posix.join(path.posix.dirname(rel), m[1]));
  }
}
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
console.log(`initial JS: ${kb(total)} gzipped in ${seen.size} file(s) (budget ${kb(BUDGET)})`);
if (total > BUDGET) {
  console.error(`initial JS is over budget: ${kb(total)} > ${kb(BUDGET)}`);
  process.exit(1);
}
