// -hosts lists and host files: accepted forms, duplicate merging, and errors that name the entry or path:line.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseHostFile, parseHostList } from '../../src/cli/hostlist.js';
import { TsmpiError } from '../../src/util/errors.js';

function errorOf(f: () => unknown): TsmpiError {
  try {
    f();
  } catch (e) {
    if (e instanceof TsmpiError) return e;
    throw e;
  }
  throw new Error('expected a TsmpiError');
}

describe('parseHostList', () => {
  const good: Array<[string, unknown]> = [
    ['a', [{ name: 'a' }]],
    ['a,b:4,c', [{ name: 'a' }, { name: 'b', slots: 4 }, { name: 'c' }]],
    [' a , b:2 ', [{ name: 'a' }, { name: 'b', slots: 2 }]],
    ['node-01.cluster.example,node_2', [{ name: 'node-01.cluster.example' }, { name: 'node_2' }]],
    ['a,a', [{ name: 'a', slots: 2 }]],
    ['a:4,b,a', [{ name: 'a', slots: 5 }, { name: 'b' }]],
    ['10.0.0.1:2', [{ name: '10.0.0.1', slots: 2 }]],
    [`${'a'.repeat(63)}.example`, [{ name: `${'a'.repeat(63)}.example` }]],
  ];
  for (const [input, want] of good) {
    it(`'${input}'`, () => expect(parseHostList(input)).toEqual(want));
  }

  const bad: Array<[string, string]> = [
    ['', 'empty host list'],
    [',', 'empty host list'],
    ['a,', 'empty entry 2'],
    ['a,,b', 'empty entry 2'],
    ['a:0', "'a:0'"],
    ['a:', "'a:'"],
    ['a:x', "'a:x'"],
    ['a:1.5', "'a:1.5'"],
    ['a:-1', "'a:-1'"],
    ['a:99999999999', 'too large'],
    ['n[01-04]', 'range'],
    ['a b', "'a b'"],
    ['-a', "'-a'"],
    [`${'a'.repeat(64)}.example`, 'part of 64 characters'],
    [Array.from({ length: 5 }, () => 'b'.repeat(60)).join('.'), 'is 304 characters long; a host name has at most 253'],
  ];
  for (const [input, fragment] of bad) {
    it(`rejects '${input}'`, () => {
      const e = errorOf(() => parseHostList(input));
      expect(e.code).toBe('bad-value');
      expect(e.message).toContain(fragment);
      expect(e.hint).toBeTruthy();
    });
  }

  it('keeps first-seen order and sums slots (a mention without a count is one slot)', () => {
    const name = fc.constantFrom('a', 'b', 'c', 'node1');
    const entry = fc.tuple(name, fc.option(fc.integer({ min: 1, max: 64 }), { nil: undefined }));
    fc.assert(
      fc.property(fc.array(entry, { minLength: 1, maxLength: 12 }), (entries) => {
        const text = entries.map(([n, s]) => (s === undefined ? n : `${n}:${s}`)).join(',');
        const hosts = parseHostList(text);
        const order = [...new Set(entries.map(([n]) => n))];
        expect(hosts.map((h) => h.name)).toEqual(order);
        for (const h of hosts) {
          const mine = entries.filter(([n]) => n === h.name);
          const want = mine.length === 1 ? mine[0]?.[1] : mine.reduce((t, [, s]) => t + (s ?? 1), 0);
          expect(h.slots).toBe(want);
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('parseHostFile', () => {
  it('reads every accepted form, comments, blank lines and CRLF', () => {
    const text = [
      '# cluster nodes',
      'a',
      '',
      'b:4          # four slots',
      '   c slots=2 max_slots=8',
      'd max_slots=3 slots=1\r',
      '\t',
      'a slots=3',
    ].join('\n');
    expect(parseHostFile(text, 'hosts.txt')).toEqual([
      { name: 'a', slots: 4 },
      { name: 'b', slots: 4 },
      { name: 'c', slots: 2 },
      { name: 'd', slots: 1 },
    ]);
  });

  it('gives [] for a file with only comments (the caller reports it)', () => {
    expect(parseHostFile('# none\n\n', 'h')).toEqual([]);
  });

  const bad: Array<[string, string, string[]]> = [
    ['a\nb c\n', 'h:2', ["unknown word 'c'"]],
    ['a\n\n# x\nb:zero\n', 'h:4', ["'zero'"]],
    ['a slots=0\n', 'h:1', ['slots']],
    ['a slots=x\n', 'h:1', ["'x'"]],
    ['a:2 slots=3\n', 'h:1', ['slot count given twice']],
    ['a slots=2 slots=3\n', 'h:1', ['slot count given twice']],
    ['a max_slots=2 max_slots=3\n', 'h:1', ['max_slots given twice']],
    ['a binding=core\n', 'h:1', ["unknown word 'binding=core'"]],
    ['ok\nn[1-3]\n', 'h:2', ['range']],
  ];
  for (const [text, where, fragments] of bad) {
    it(`rejects ${JSON.stringify(text)} at ${where}`, () => {
      const e = errorOf(() => parseHostFile(text, 'h'));
      expect(e.code).toBe('hostfile');
      expect(e.culprit).toBe(where);
      expect(e.message.startsWith(`${where}: `)).toBe(true);
      for (const f of fragments) expect(e.message).toContain(f);
      expect(e.hint).toBeTruthy();
    });
  }
});
