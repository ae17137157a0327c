// Bad input for every option, generated from THE option table (src/cli/options.ts OPTIONS: arity, valueKind,
// choices, env): missing, empty, negative, zero, non-numeric and absurd values, an option where the value should
// be, control characters. Each gives a run request or a TsmpiError with exit status 2, a culprit and a hint,
// shown as one line plus the hint, never another exception. Then random command lines (fast-check), and the
// placement limits that keep absurd-but-valid numbers (-n 2147483647, -ppn 2147483647) from exhausting memory.
// A new option in the table is covered here without editing this file. The same cases run through the real
// binary in test/e2e/hardening-input.test.ts.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OPTIONS, type OptionDef } from '../../src/cli/options.js';
import { parseArgs } from '../../src/cli/parse.js';
import { MAX_NUMBER } from '../../src/cli/values.js';
import { MAX_JOB_RANKS, place, slotSequence } from '../../src/placement/place.js';
import { formatError, printable, TsmpiError } from '../../src/util/errors.js';
import type { HostSpec, JobRequest } from '../../src/model/types.js';
import { badValueCases, type BadCase } from '../fixtures/hardening/option-cases.js';

type Outcome = { kind: 'ok'; value: ReturnType<typeof parseArgs> } | { kind: 'error'; error: TsmpiError };

const files: Record<string, string> = { hosts: 'a:2\n', cfg: '-n 1 ./a\n' };
const readFile = (p: string): string => {
  const t = files[p];
  if (t === undefined) throw Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' });
  return t;
};

function attempt(argv: string[], env: Record<string, string | undefined> = {}): Outcome {
  try {
    return { kind: 'ok', value: parseArgs(argv, env, readFile) };
  } catch (e) {
    if (e instanceof TsmpiError) return { kind: 'error', error: e };
    throw e;
  }
}

/** What the user sees for an expected error: `tsmpiexec: ... (culprit) [code]` and `hint: ...`, nothing else. */
function expectCleanError(e: TsmpiError): void {
  expect(e.exitStatus).toBe(2);
  expect(e.culprit, 'every error names a culprit (possibly an empty word)').toBeDefined();
  expect(e.hint, 'every error has a hint').toBeTruthy();
  const lines = formatError(e).split('\n');
  expect(lines).toHaveLength(2);
  expect(lines[0]).toMatch(/^tsmpiexec: .* \[[a-z-]+\]$/);
  expect(lines[1]).toMatch(/^hint: /);
  expect(lines.join('')).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
}

describe('every option of the table, with bad values', () => {
  const cases = badValueCases(OPTIONS);

  it('generates cases for every option that takes a value (and the table has them)', () => {
    const withValue = OPTIONS.filter((o) => o.arity > 0 && !o.optionalValue);
    expect(withValue.length).toBeGreaterThan(20);
    for (const o of withValue) expect(cases.some((c) => c.option === o.name), `no case for ${o.name}`).toBe(true);
  });

  it.each(cases.map((c): [string, BadCase] => [c.title, c]))('%s', (_title, c) => {
    const r = attempt(c.argv, c.env);
    if (c.expect === 'error') {
      expect(r.kind, `accepted: ${JSON.stringify(c.argv)}`).toBe('error');
    }
    if (r.kind === 'error') {
      expectCleanError(r.error);
      if (c.mentions !== undefined) expect(formatError(r.error)).toContain(printable(c.mentions));
    }
  });
});

describe('random command lines', () => {
  const spelling = (o: OptionDef): fc.Arbitrary<string> =>
    fc.tuple(fc.constantFrom(o.name, ...o.aliases), fc.constantFrom('-', '--')).map(([s, d]) => d + s);
  const anyOption = fc.constantFrom(...OPTIONS).chain(spelling);
  const value = fc.oneof(
    fc.constantFrom('', '0', '1', '-1', '4', '2147483647', '2147483648', '99999999999999999999', 'abc', 'a,b', ',', 'a:2', 'fd', 'all', 'none', '1M', '%r', ':', '--', '-n', 'x=y', '1e3', ' '),
    fc.string({ maxLength: 12 }),
    fc.string({ unit: 'binary', maxLength: 6 }),
  );
  const word = fc.oneof({ weight: 3, arbitrary: anyOption }, { weight: 3, arbitrary: value }, { weight: 1, arbitrary: anyOption.chain((o) => value.map((v) => `${o}=${v}`)) });
  const envArb = fc.record(
    Object.fromEntries(OPTIONS.filter((o) => o.env !== undefined).map((o) => [o.env as string, fc.option(value, { nil: undefined })])),
  ) as fc.Arbitrary<Record<string, string | undefined>>;

  it('a request, help, version, or a clean TsmpiError: never another exception', () => {
    fc.assert(
      fc.property(fc.array(word, { maxLength: 10 }), fc.boolean(), envArb, (words, withProgram, env) => {
        const argv = withProgram ? [...words, './prog', '-n', 'x'] : words;
        const r = attempt(argv, env);
        if (r.kind === 'error') expectCleanError(r.error);
        else if (r.value.kind === 'run') checkRequest(r.value.request);
      }),
      { numRuns: 3000 },
    );
  });
});

/** Invariants of an accepted request (numbers in range, at least one segment with a program). */
function checkRequest(req: JobRequest): void {
  expect(req.segments.length).toBeGreaterThan(0);
  // (an empty program name is accepted here and refused when it is resolved, with the launch-failure status)
  for (const s of req.segments) {
    if (s.np !== undefined) expect(s.np >= 1 && s.np <= MAX_NUMBER).toBe(true);
  }
  for (const n of [req.ppn, req.timeoutSec, req.pidsPerRank]) if (n !== undefined) expect(n >= 1 && n <= MAX_NUMBER).toBe(true);
  expect(req.graceSec >= 0 && req.graceSec <= MAX_NUMBER).toBe(true);
}

describe('placement of absurd but valid numbers', () => {
  const hostsArb = fc.array(
    fc.record({ name: fc.constantFrom('a', 'b', 'c', 'd'), slots: fc.option(fc.integer({ min: 1, max: 6 }), { nil: undefined }) }),
    { minLength: 1, maxLength: 4 },
  ).map((hs) => hs.filter((h, i) => hs.findIndex((x) => x.name === h.name) === i).map((h): HostSpec => (h.slots === undefined ? { name: h.name } : { name: h.name, slots: h.slots })));

  it('cutting the slot sequence at the job size never changes where a rank goes', () => {
    fc.assert(
      fc.property(hostsArb, fc.option(fc.integer({ min: 1, max: 5 }), { nil: undefined }), fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 3 }), (hosts, ppn, nps) => {
        const segments = nps.map((np, index) => ({ index, program: 'p', args: [], env: { set: [] }, np }));
        const plan = place({ request: { segments, ppn }, hosts, hostSource: { kind: 'cmdline' }, kvsname: 'k', defaultNp: 1 });
        const full = slotSequence(hosts, ppn);
        expect(plan.ranks.map((r) => r.host)).toEqual(plan.ranks.map((r) => hosts[full[r.rank % full.length] as number]?.name));
      }),
      { numRuns: 500 },
    );
  });

  const one = (np: number | undefined, ppn?: number, hosts: HostSpec[] = [{ name: 'a' }]): ReturnType<typeof place> =>
    place({ request: { segments: [{ index: 0, program: 'p', args: [], env: { set: [] }, ...(np === undefined ? {} : { np }) }], ppn }, hosts, hostSource: { kind: 'cmdline' }, kvsname: 'k', defaultNp: hosts.reduce((t, h) => t + (h.slots ?? 1), 0) });

  it('-ppn 2147483647 and host:2147483647 do not build a slot per rank that is never used', () => {
    expect(one(2, MAX_NUMBER).size).toBe(2);
    expect(one(3, undefined, [{ name: 'a', slots: MAX_NUMBER }, { name: 'b', slots: MAX_NUMBER }]).ranks.map((r) => r.host)).toEqual(['a', 'a', 'a']);
  });

  it('-n beyond MAX_JOB_RANKS (also through slot counts or MPMD sums) is one clean error, not an out-of-memory abort', () => {
    expect(one(MAX_JOB_RANKS).size).toBe(MAX_JOB_RANKS);
    for (const f of [() => one(MAX_JOB_RANKS + 1), () => one(MAX_NUMBER), () => one(undefined, undefined, [{ name: 'a', slots: MAX_NUMBER }])]) {
      let caught: unknown;
      try {
        f();
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(TsmpiError);
      expectCleanError(caught as TsmpiError);
      expect((caught as TsmpiError).message).toContain(`at most ${MAX_JOB_RANKS}`);
    }
  });
});

describe('printable', () => {
  it('leaves ordinary text alone and escapes every control character', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (s) => {
        const p = printable(s);
        expect(p).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
        if (!/[\u0000-\u001f\u007f-\u009f]/.test(s)) expect(p).toBe(s);
      }),
      { numRuns: 1000 },
    );
    expect(printable('a\nb\x1b[31m')).toBe('a\\nb\\x1b[31m');
  });
});
