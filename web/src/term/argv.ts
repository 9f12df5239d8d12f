// The new-terminal form takes a command as one line of text; the API takes an argv vector and
// never runs a shell string. This is the small, predictable split between the two: whitespace
// separates words, '…' is literal, "…" allows \" and \\, a backslash outside quotes escapes the
// next character. Nothing else (no $, globs, ~) is interpreted.

export class ArgvError extends Error {}

/** Splits `line` into argv; an empty line gives []. Throws ArgvError on an unclosed quote. */
export function splitArgv(line: string): string[] {
  const out: string[] = [];
  let word = "";
  let inWord = false;
  let quote: "'" | '"' | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote === "'") {
      if (c === "'") quote = null;
      else word += c;
    } else if (quote === '"') {
      if (c === '"') quote = null;
      else if (c === "\\" && (line[i + 1] === '"' || line[i + 1] === "\\")) word += line[++i];
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === "\\" && i + 1 < line.length) {
      word += line[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(word);
      word = "";
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote) throw new ArgvError(`the command has an unclosed ${quote} quote`);
  if (inWord) out.push(word);
  return out;
}
