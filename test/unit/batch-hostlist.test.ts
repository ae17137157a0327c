// Slurm's compressed host lists and count lists: every form sites use, and errors that name the bad part.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { BadPart, MAX_HOSTS, expandCounts, expandHostList } from '../../src/hosts/batch/hostlist.js';

function badPart(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof BadPart) return e.message;
    throw e;
  }
  throw new Error('expected a BadPart');
}

describe('expandHostList', () => {
  const good: Array<[string, string[]]> = [
    ['n1', ['n1']],
    ['n1,n2', ['n1', 'n2']],
    ['n[1-3]', ['n1', 'n2', 'n3']],
    ['n[01-04,07],gpu[1-2]', ['n01', 'n02', 'n03', 'n04', 'n07', 'gpu1', 'gpu2']],
    ['n[8-11]', ['n8', 'n9', 'n10', 'n11']],
    ['n[08-11]', ['n08', 'n09', 'n10', 'n11']],
    ['node[098-101]', ['node098', 'node099', 'node100', 'node101']],
    ['n[0007-0008]', ['n0007', 'n0008']],
    ['n[5]', ['n5']],
    ['rack[1-2]-n[01-02]', ['rack1-n01', 'rack1-n02', 'rack2-n01', 'rack2-n02']],
    ['a[1-2]b', ['a1b', 'a2b']],
    ['cn-7.ib,cn[1-2].ib', ['cn-7.ib', 'cn1.ib', 'cn2.ib']],
    ['[1-2]', ['1', '2']],
    ['  vm  ', ['vm']],
  ];
  for (const [expr, want] of good) it(`'${expr}'`, () => expect(expandHostList(expr)).toEqual(want));

  const bad: Array<[string, string]> = [
    ['', 'empty entry'],
    ['n1,,n2', 'empty entry'],
    ['n1,', 'empty entry'],
    ['n[1-3', "unclosed '['"],
    ['n1-3]', "']' without '['"],
    ['n[[1-2]]', "nested '['"],
    ['n[]', 'empty brackets'],
    ['n[3-1]', "range '3-1' runs backwards"],
    ['n[1-x]', "bad range '1-x'"],
    ['n[1,,2]', "bad range ''"],
    ['n[1-2:2]', "bad range '1-2:2'"],
    ['n 1', 'white space'],
    ['n$1', "'n$1' in 'n$1' is not part of a host name"],
    ['-n[1-2]', "'-n1' is not a host name"],
    ['n[1-200000]', `more than ${MAX_HOSTS} hosts`],
    ['a[1-1000]b[1-1000]', `more than ${MAX_HOSTS} hosts`],
  ];
  for (const [expr, part] of bad) it(`rejects '${expr}'`, () => expect(badPart(() => expandHostList(expr))).toContain(part));

  it('expands what a compressor of zero-padded ranges would write', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 500 }), fc.integer({ min: 0, max: 40 }), fc.integer({ min: 1, max: 4 }), (lo, len, width) => {
        const pad = (n: number): string => String(n).padStart(width, '0');
        const names = expandHostList(`x[${pad(lo)}-${pad(lo + len)}]`);
        expect(names).toHaveLength(len + 1);
        names.forEach((n, i) => expect(n).toBe(`x${pad(lo + i)}`));
      }),
    );
  });
});

describe('expandCounts', () => {
  const good: Array<[string, number[]]> = [
    ['1', [1]],
    ['2(x3),1', [2, 2, 2, 1]],
    ['4(x2)', [4, 4]],
    ['16,8(x2),16', [16, 8, 8, 16]],
  ];
  for (const [text, want] of good) it(`'${text}'`, () => expect(expandCounts(text)).toEqual(want));
  const bad: Array<[string, string]> = [
    ['', "bad count ''"],
    ['2(x)', "bad count '2(x)'"],
    ['2(x0)', "bad repeat in '2(x0)'"],
    ['2x3', "bad count '2x3'"],
    ['-1', "bad count '-1'"],
    ['2,,1', "bad count ''"],
    ['1(x999999999)', 'more than'],
  ];
  for (const [text, part] of bad) it(`rejects '${text}'`, () => expect(badPart(() => expandCounts(text))).toContain(part));
});
