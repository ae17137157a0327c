// Joins a -configfile's physical lines into logical ones (a trailing backslash continues a line) and
// remembers where each starts, so errors can say path:line. Word splitting and comments: shell-words.ts.

export interface ConfigLine {
  /** 1-based number of the first physical line. */
  line: number;
  text: string;
}

/** Backslashes at the end of `s`: an odd count means the last one escapes the newline. */
function continues(s: string): boolean {
  let n = 0;
  for (let i = s.length - 1; i >= 0 && s[i] === '\\'; i--) n++;
  return n % 2 === 1;
}

export function configLines(text: string): ConfigLine[] {
  const out: ConfigLine[] = [];
  const physical = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  let start = 0;
  let acc: string | undefined;
  physical.forEach((l, k) => {
    if (acc === undefined) {
      start = k + 1;
      acc = '';
    }
    // A comment line is not continued: `# note \` does not swallow the next line.
    if (continues(l) && !/^\s*#/.test(acc + l)) {
      acc += l.slice(0, -1);
      return;
    }
    out.push({ line: start, text: acc + l });
    acc = undefined;
  });
  if (acc !== undefined) out.push({ line: start, text: acc });
  return out;
}
