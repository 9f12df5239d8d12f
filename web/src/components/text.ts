// Turning the form's plain text into the API's structured values and back: an argv typed as one
// line, env as NAME=value lines, lists as comma-separated words.

/**
 * Splits a command line on whitespace; '…' and "…" group words with spaces (no escapes inside
 * single quotes; a backslash escapes the next character elsewhere). An unclosed quote throws an
 * Error naming it: guessing where the argument ends would run a command the user did not mean.
 */
export function splitArgv(line: string): string[] {
  const out: string[] = [];
  let cur = "";
  let inWord = false;
  let quote: "'" | '"' | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = null;
      else if (c === "\\" && quote === '"' && i + 1 < line.length) cur += line[++i];
      else cur += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === "\\" && i + 1 < line.length) {
      cur += line[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(cur);
      cur = "";
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  // An unclosed quote is a typo, not an argument: say so rather than guess where it ends.
  if (quote) throw new Error(`the command has an unclosed ${quote} quote`);
  if (inWord) out.push(cur);
  return out;
}

/** The inverse of `splitArgv`: words with spaces or quotes are single-quoted. */
export function joinArgv(argv: string[]): string {
  return argv
    .map((a) => {
      if (a !== "" && !/[\s'"\\]/.test(a)) return a;
      if (!a.includes("'")) return `'${a}'`;
      return `"${a.replace(/["\\]/g, (m) => "\\" + m)}"`;
    })
    .join(" ");
}

/** `NAME=value` lines (blank lines and `#` comments skipped); throws naming a bad line. */
export function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  text.split("\n").forEach((raw, i) => {
    // Surrounding spaces are dropped (a value that needs them is rare; stray ones are common).
    const line = raw.trim();
    if (!line || line.startsWith("#")) return;
    const eq = line.indexOf("=");
    if (eq <= 0) throw new Error(`env line ${i + 1}: expected NAME=value, got ${JSON.stringify(line)}`);
    env[line.slice(0, eq).trim()] = line.slice(eq + 1);
  });
  return env;
}

export function formatEnv(env: Record<string, string>): string {
  return Object.entries(env)
    .map(([k, v]) => `${k}=${v}`)
    .join("\n");
}

/** "a, b ,c" → ["a","b","c"]: comma-separated, trimmed, empties dropped. */
export function splitList(text: string): string[] {
  return text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}
