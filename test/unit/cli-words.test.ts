// The small text helpers behind the parser: shell-like word splitting, config-file lines, typo distance.
import { describe, expect, it } from 'vitest';
import { ShellWordsError, splitShellWords } from '../../src/cli/shell-words.js';
import { configLines } from '../../src/cli/configfile.js';
import { editDistance, nearest } from '../../src/cli/suggest.js';
import { wrapText } from '../../src/cli/wrap.js';

describe('splitShellWords', () => {
  const cases: Array<[string, string[], boolean?]> = [
    ['', []],
    ['  ssh   -p 2222 ', ['ssh', '-p', '2222']],
    [`a "b c" 'd e' f\\ g`, ['a', 'b c', 'd e', 'f g']],
    [`"" ''`, ['', '']],
    [`x"y z"'w'`, ['xy zw']],
    [`"a \\" \\\\ \\$ \\n"`, ['a " \\ $ \\n']],
    [`'no \\ escapes "here"'`, ['no \\ escapes "here"']],
    ['a # not a comment', ['a', '#', 'not', 'a', 'comment']],
    ['a # a comment', ['a'], true],
    ['a#b # c', ['a#b'], true],
    ['"#" x', ['#', 'x'], true],
  ];
  for (const [text, want, comments] of cases) {
    it(JSON.stringify(text), () => expect(splitShellWords(text, { comments: comments ?? false })).toEqual(want));
  }
  for (const text of [`"open`, `'open`, 'trailing\\']) {
    it(`rejects ${JSON.stringify(text)}`, () => expect(() => splitShellWords(text)).toThrow(ShellWordsError));
  }
});

describe('configLines', () => {
  it('joins continued lines and keeps the first line number', () => {
    expect(configLines('a\\\nb \\\n  c\nd\r\n# x \\\ne\n')).toEqual([
      { line: 1, text: 'ab   c' },
      { line: 4, text: 'd' },
      { line: 5, text: '# x \\' },
      { line: 6, text: 'e' },
      { line: 7, text: '' },
    ]);
  });
  it('an escaped backslash does not continue the line', () => {
    expect(configLines('a\\\\\nb')).toEqual([
      { line: 1, text: 'a\\\\' },
      { line: 2, text: 'b' },
    ]);
  });
  it('a continuation on the last line ends the text', () => {
    expect(configLines('a \\')).toEqual([{ line: 1, text: 'a ' }]);
  });
});

describe('editDistance and nearest', () => {
  it('counts edits, with adjacent swaps as one', () => {
    expect(editDistance('npp', 'np')).toBe(1);
    expect(editDistance('nenv', 'genv')).toBe(1);
    expect(editDistance('gnev', 'genv')).toBe(1);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('kitten', 'sitting')).toBe(3);
  });
  it('guesses only plausible typos', () => {
    expect(nearest('npp', ['n', 'np', 'ppn'])).toBe('np');
    expect(nearest('dryrun', ['dry-run', 'json'])).toBe('dry-run');
    expect(nearest('x', ['n', 'l'])).toBeUndefined();
    expect(nearest('banana', ['np', 'genv'])).toBeUndefined();
  });
});

describe('wrapText', () => {
  it('wraps at word boundaries within the width', () => {
    const lines = wrapText('one two three four five six seven', 10);
    expect(lines).toEqual(['one two', 'three four', 'five six', 'seven']);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(10);
  });
});
