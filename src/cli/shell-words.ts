// Splits a string into words the way a POSIX shell would, without expanding anything: used for
// -launcher-exec 'ssh -p 2222' and for the lines of a -configfile. Quotes are respected, `#` may start a comment.

export class ShellWordsError extends Error {}

/**
 * `a "b c" 'd'\ e` → ['a', 'b c', 'd e']. Single quotes keep everything; in double quotes a backslash
 * escapes only `\ " $ \``; outside quotes a backslash escapes any character. With `comments`, a `#` at
 * the start of a word starts a comment that runs to the end of the text. Throws ShellWordsError on an
 * unterminated quote or a trailing backslash.
 */
export function splitShellWords(text: string, opts: { comments?: boolean } = {}): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      i++;
    } else if (c === '#' && !inWord && opts.comments) {
      break;
    } else if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) throw new ShellWordsError('unterminated single quote');
      word += text.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (c === '"') {
      i++;
      inWord = true;
      for (;;) {
        const d = text[i];
        if (d === undefined) throw new ShellWordsError('unterminated double quote');
        if (d === '"') break;
        const next = text[i + 1];
        if (d === '\\' && next !== undefined && '\\"$`'.includes(next)) {
          word += next;
          i += 2;
        } else {
          word += d;
          i++;
        }
      }
      i++;
    } else if (c === '\\') {
      const next = text[i + 1];
      if (next === undefined) throw new ShellWordsError('backslash at the end');
      word += next;
      inWord = true;
      i += 2;
    } else {
      word += c;
      inWord = true;
      i++;
    }
  }
  if (inWord) words.push(word);
  return words;
}
