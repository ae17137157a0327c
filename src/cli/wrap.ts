// Word wrapping for --help text (plain ASCII; a word longer than the width gets a line of its own).

export function wrapText(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter((w) => w !== '')) {
    if (line === '') line = word;
    else if (line.length + 1 + word.length <= width) line += ` ${word}`;
    else {
      lines.push(line);
      line = word;
    }
  }
  if (line !== '') lines.push(line);
  return lines;
}

/** Paragraphs (separated by blank lines) wrapped and indented, with a blank line between them. */
export function wrapParagraphs(text: string, width: number, indent: string): string[] {
  const out: string[] = [];
  text.split(/\n\s*\n/).forEach((p, k) => {
    if (k > 0) out.push('');
    for (const l of wrapText(p, Math.max(10, width - indent.length))) out.push(indent + l);
  });
  return out;
}
