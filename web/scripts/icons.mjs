// Draws the app icons in web/public/icons (committed; run again only to change them):
// `node scripts/icons.mjs`. A terminal prompt "›_" in the UI's accent colour on its background
// colour (web/src/styles.css), as PNGs: 192 and 512 px with rounded corners ("any"), and a
// full-bleed 512 px whose glyph stays inside the maskable safe zone (the middle 80 %).
import { writeFileSync } from "node:fs";
import { deflateSync } from "node:zlib";

const BG = [0x0f, 0x11, 0x15];
const FG = [0x6e, 0xa8, 0xfe];

function crc32(buf) {
  let c, crc = 0xffffffff;
  for (let n = 0; n < buf.length; n++) {
    c = (crc ^ buf[n]) & 0xff;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    crc = (crc >>> 8) ^ c;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

function png(size, pixel) {
  const raw = Buffer.alloc((size * 4 + 1) * size);
  for (let y = 0; y < size; y++) {
    raw[y * (size * 4 + 1)] = 0;
    for (let x = 0; x < size; x++) {
      const p = pixel(x + 0.5, y + 0.5);
      raw.set(p, y * (size * 4 + 1) + 1 + x * 4);
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // RGBA
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(raw, { level: 9 })),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

// Distance from p to segment ab.
function seg(px, py, ax, ay, bx, by) {
  const dx = bx - ax, dy = by - ay;
  const t = Math.max(0, Math.min(1, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)));
  return Math.hypot(px - (ax + t * dx), py - (ay + t * dy));
}

// The glyph in unit coordinates (0..1), drawn at `scale` around the centre.
function glyph(u, v, scale) {
  const x = (u - 0.5) / scale + 0.5, y = (v - 0.5) / scale + 0.5;
  const w = 0.055;
  const d = Math.min(
    seg(x, y, 0.22, 0.3, 0.45, 0.5),
    seg(x, y, 0.45, 0.5, 0.22, 0.7),
    seg(x, y, 0.52, 0.72, 0.78, 0.72),
  );
  return Math.max(0, Math.min(1, (w - d) * scale * 200 + 0.5));
}

function icon(size, { rounded, scale }) {
  const r = rounded ? size * 0.2 : 0;
  return png(size, (x, y) => {
    let alpha = 1;
    if (r > 0) {
      const cx = Math.min(Math.max(x, r), size - r), cy = Math.min(Math.max(y, r), size - r);
      alpha = Math.max(0, Math.min(1, r - Math.hypot(x - cx, y - cy) + 0.5));
    }
    const g = glyph(x / size, y / size, scale);
    const c = BG.map((b, i) => Math.round(b + (FG[i] - b) * g));
    return [...c, Math.round(alpha * 255)];
  });
}

const out = new URL("../public/icons/", import.meta.url);
writeFileSync(new URL("icon-192.png", out), icon(192, { rounded: true, scale: 1 }));
writeFileSync(new URL("icon-512.png", out), icon(512, { rounded: true, scale: 1 }));
writeFileSync(new URL("icon-maskable-512.png", out), icon(512, { rounded: false, scale: 0.7 }));
