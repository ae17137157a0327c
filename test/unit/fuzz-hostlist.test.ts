// Property tests of the host parsers on hostile input: `-hosts` lists and host files (src/cli/hostlist.ts) and
// Slurm's compressed lists and counts (src/hosts/batch/hostlist.ts). Anything at all gives hosts or the
// documented error (code, exit status 2, a hint, path:line), never another exception; structured input
// matches a model (duplicates merged with summed slots, ranges expanded with their padding).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseHostFile, parseHostList } from '../../src/cli/hostlist.js';
import { MAX_NUMBER } from '../../src/cli/values.js';
import { BadPart, MAX_HOSTS, expandCounts, expandHostList } from '../../src/hosts/batch/hostlist.js';
import { formatError, TsmpiError } from '../../src/util/errors.js';
import type { HostSpec } from '../../src/model/types.js';

const HOST_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;

/** Text made mostly of the characters these parsers care about, plus any byte now and then. */
const hostish = (maxLength: number): fc.Arbitrary<string> =>
  fc.string({
    unit: fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom('a', 'n', '0', '1', '9', ':', ',', '#', ' ', '\t', '\n', '\r', '=', '-', '.', '[', ']', '_', 's', 'slots=', 'max_slots=') },
      { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
    ),
    maxLength,
  });

/** Runs f; a TsmpiError is returned, any other exception fails the property. */
function attempt<T>(f: () => T): T | TsmpiError {
  try {
    return f();
  } catch (e) {
    if (e instanceof TsmpiError) return e;
    throw e;
  }
}

function checkHosts(hosts: HostSpec[]): void {
  const names = hosts.map((h) => h.name);
  expect(new Set(names).size, 'a host listed twice').toBe(names.length);
  for (const h of hosts) {
    expect(h.name).toMatch(HOST_NAME);
    if (h.slots !== undefined) {
      expect(Number.isInteger(h.slots)).toBe(true);
      expect(h.slots).toBeGreaterThanOrEqual(1);
      expect(h.slots).toBeLessThanOrEqual(MAX_NUMBER);
    }
  }
}

/** The error a user sees: one line plus a hint line, no control characters, no stack. */
function checkShown(e: TsmpiError): void {
  const shown = formatError(e).split('\n');
  expect(shown).toHaveLength(2);
  expect(shown[0]).toMatch(/^tsmpiexec: /);
  expect(shown[1]).toMatch(/^hint: /);
  // no C0/C1 control character reaches the terminal
  expect(shown.join('')).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
}

describe('-hosts lists', () => {
  it('any text: hosts with valid names and slots, or a bad-value error with a hint', () => {
    fc.assert(
      fc.property(hostish(60), (text) => {
        const r = attempt(() => parseHostList(text));
        if (r instanceof TsmpiError) {
          expect(r.code).toBe('bad-value');
          expect(r.exitStatus).toBe(2);
          checkShown(r);
        } else {
          expect(r.length).toBeGreaterThan(0);
          checkHosts(r);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('only commas and blanks is an empty list', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(',', ' ', '\t'), minLength: 0, maxLength: 10 }), (text) => {
        const r = attempt(() => parseHostList(text));
        expect(r).toBeInstanceOf(TsmpiError);
        if (r instanceof TsmpiError) expect(r.message).toMatch(/empty (host list|entry)/);
      }),
    );
  });
});

/** One line of a host file, in any of the accepted forms, or a comment / blank line. */
type Line = { kind: 'host'; name: string; slots?: number; form: 'colon' | 'slots' | 'bare'; max?: number; comment: boolean } | { kind: 'comment' } | { kind: 'blank' };

const lineArb: fc.Arbitrary<Line> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('host' as const),
      name: fc.constantFrom('a', 'b', 'node-01', 'n_2.cluster', '10.0.0.7'),
      slots: fc.integer({ min: 1, max: 1000 }),
      form: fc.constantFrom('colon' as const, 'slots' as const, 'bare' as const),
      max: fc.option(fc.integer({ min: 1, max: 64 }), { nil: undefined }),
      comment: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'comment' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'blank' as const }) },
);

function render(l: Line, crlf: boolean): string {
  const eol = crlf ? '\r' : '';
  if (l.kind === 'comment') return `  # a comment: with words:3 and slots=9${eol}`;
  if (l.kind === 'blank') return ` \t${eol}`;
  const base = l.form === 'colon' ? `${l.name}:${l.slots}` : l.form === 'slots' ? `${l.name} slots=${l.slots}` : l.name;
  const max = l.max !== undefined && l.form !== 'colon' ? ` max_slots=${l.max}` : '';
  return `${base}${max}${l.comment ? ' # trailing' : ''}${eol}`;
}

/** The model: first-seen order; a repeated host's slots add up, a mention without a count being one slot. */
function model(lines: Line[]): HostSpec[] {
  const out: HostSpec[] = [];
  const count = new Map<string, number>();
  for (const l of lines) {
    if (l.kind !== 'host') continue;
    const slots = l.form === 'bare' ? undefined : l.slots;
    const seen = out.find((h) => h.name === l.name);
    count.set(l.name, (count.get(l.name) ?? 0) + 1);
    if (!seen) out.push(slots === undefined ? { name: l.name } : { name: l.name, slots });
    else seen.slots = Math.min(MAX_NUMBER, (seen.slots ?? 1) + (slots ?? 1));
  }
  return out;
}

describe('host files', () => {
  it('any text: hosts, or a hostfile error naming path:line of an existing line, with a hint', () => {
    fc.assert(
      fc.property(hostish(200), (text) => {
        const r = attempt(() => parseHostFile(text, 'hf'));
        if (r instanceof TsmpiError) {
          expect(r.code).toBe('hostfile');
          expect(r.exitStatus).toBe(2);
          const m = /^hf:(\d+)$/.exec(r.culprit ?? '');
          expect(m, `culprit ${r.culprit}`).not.toBeNull();
          expect(Number(m?.[1])).toBeGreaterThanOrEqual(1);
          expect(Number(m?.[1])).toBeLessThanOrEqual(text.split('\n').length);
          expect(r.message.startsWith(`${r.culprit}: `)).toBe(true);
          checkShown(r);
        } else {
          checkHosts(r);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('well-formed files (every form, comments, blanks, CRLF, duplicates) give what the model says', () => {
    fc.assert(
      fc.property(fc.array(lineArb, { maxLength: 30 }), fc.boolean(), (lines, crlf) => {
        expect(parseHostFile(lines.map((l) => render(l, crlf)).join('\n'), 'hf')).toEqual(model(lines));
      }),
      { numRuns: 500 },
    );
  });

  it('a garbage line anywhere is reported at its own line number', () => {
    const garbage = fc.constantFrom('n1 n2', 'n1:x', 'n1 slots=', 'n1 cores=4', '\u0000\u0001', ':4', 'n1:2 slots=2', 'n[1-2]', 'a b c', '\u001b[31mred');
    fc.assert(
      fc.property(fc.array(lineArb, { maxLength: 10 }), garbage, fc.array(lineArb, { maxLength: 10 }), (before, bad, after) => {
        const text = [...before.map((l) => render(l, false)), bad, ...after.map((l) => render(l, false))].join('\n');
        const r = attempt(() => parseHostFile(text, 'hf'));
        expect(r).toBeInstanceOf(TsmpiError);
        if (r instanceof TsmpiError) {
          expect(r.culprit).toBe(`hf:${before.length + 1}`);
          checkShown(r);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('a file of only comments and blank lines names no host (the caller reports it)', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom<Line>({ kind: 'comment' }, { kind: 'blank' }), { maxLength: 20 }), fc.boolean(), (lines, crlf) => {
        expect(parseHostFile(lines.map((l) => render(l, crlf)).join('\n'), 'hf')).toEqual([]);
      }),
    );
  });

  it('slot counts saturate instead of overflowing when a host repeats with huge counts', () => {
    const text = Array.from({ length: 5 }, () => `a:${MAX_NUMBER}`).join('\n');
    expect(parseHostFile(text, 'hf')).toEqual([{ name: 'a', slots: MAX_NUMBER }]);
  });
});

describe('Slurm host lists (SLURM_JOB_NODELIST)', () => {
  const slurmish = fc.string({ unit: fc.constantFrom('n', 'x', '0', '1', '2', '9', '[', ']', ',', '-', '.', ' ', '$', '00'), maxLength: 40 });

  it('any text: names (at most MAX_HOSTS, each a host name) or a BadPart, never another exception', () => {
    fc.assert(
      fc.property(fc.oneof(slurmish, fc.string({ unit: 'binary', maxLength: 30 })), (expr) => {
        let names: string[];
        try {
          names = expandHostList(expr);
        } catch (e) {
          if (e instanceof BadPart) return;
          throw e;
        }
        expect(names.length).toBeGreaterThan(0);
        expect(names.length).toBeLessThanOrEqual(MAX_HOSTS);
        for (const n of names) expect(n).toMatch(/^[A-Za-z0-9_][A-Za-z0-9._-]*$/);
      }),
      { numRuns: 3000 },
    );
  });

  /** prefix[ranges]suffix items, and what they must expand to. */
  const range = fc.tuple(fc.integer({ min: 0, max: 120 }), fc.integer({ min: 0, max: 6 }), fc.integer({ min: 1, max: 4 }));
  const item = fc.tuple(fc.constantFrom('n', 'gpu', 'rack1-n', 'cn.'), fc.array(range, { minLength: 1, maxLength: 3 }), fc.constantFrom('', '.ib', '-x'));

  it('structured lists expand like the model: items in order, ranges in order, padding from the lower bound', () => {
    fc.assert(
      fc.property(fc.array(item, { minLength: 1, maxLength: 4 }), (items) => {
        const expr = items
          .map(([pre, ranges, suf]) => `${pre}[${ranges.map(([lo, len, w]) => `${String(lo).padStart(w, '0')}-${String(lo + len).padStart(w, '0')}`).join(',')}]${suf}`)
          .join(',');
        const want = items.flatMap(([pre, ranges, suf]) =>
          ranges.flatMap(([lo, len, w]) => Array.from({ length: len + 1 }, (_, k) => `${pre}${String(lo + k).padStart(w, '0')}${suf}`)),
        );
        expect(expandHostList(expr)).toEqual(want);
      }),
      { numRuns: 500 },
    );
  });

  it('counts (SLURM_TASKS_PER_NODE): any text gives numbers or a BadPart; N(xM) repeats N M times', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('1', '2', '0', '9', '(', ')', 'x', ',', ' ', '-'), maxLength: 30 }), (text) => {
        try {
          const counts = expandCounts(text);
          for (const c of counts) expect(Number.isInteger(c) && c >= 0).toBe(true);
          expect(counts.length).toBeLessThanOrEqual(MAX_HOSTS);
        } catch (e) {
          if (!(e instanceof BadPart)) throw e;
        }
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 999 }), fc.integer({ min: 1, max: 50 })), { minLength: 1, maxLength: 8 }), (parts) => {
        const text = parts.map(([n, t]) => (t === 1 ? String(n) : `${n}(x${t})`)).join(',');
        expect(expandCounts(text)).toEqual(parts.flatMap(([n, t]) => Array<number>(t).fill(n)));
      }),
      { numRuns: 300 },
    );
  });
});
