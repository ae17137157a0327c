// -bind-to / -map-by / --report-bindings: spellings → policies, and bad values → one bad-value error naming them.
import { describe, expect, it } from 'vitest';
import { parseArgs } from '../../src/cli/parse.js';
import { TsmpiError } from '../../src/util/errors.js';
import type { JobRequest } from '../../src/model/types.js';

function request(argv: string[]): JobRequest {
  const r = parseArgs(argv, {}, () => '');
  if (r.kind !== 'run') throw new Error(`expected a run, got ${r.kind}`);
  return r.request;
}

function failure(argv: string[]): TsmpiError {
  try {
    parseArgs(argv, {}, () => '');
  } catch (e) {
    if (e instanceof TsmpiError) return e;
    throw e;
  }
  throw new Error(`expected ${argv.join(' ')} to fail`);
}

describe('-bind-to', () => {
  const cases: Array<[string[], JobRequest['bindTo']]> = [
    [[], { kind: 'default' }],
    [['-bind-to', 'none'], { kind: 'none' }],
    [['-bind-to', 'core'], { kind: 'object', object: 'core', count: 1 }],
    [['--bind-to', 'core'], { kind: 'object', object: 'core', count: 1 }],
    [['--bind-to=hwthread'], { kind: 'object', object: 'hwthread', count: 1 }],
    [['-bind-to', 'core:2'], { kind: 'object', object: 'core', count: 2 }],
    [['-bind-to', 'socket'], { kind: 'object', object: 'socket', count: 1 }],
    [['-bind-to', 'numa'], { kind: 'object', object: 'numa', count: 1 }],
    [['-bind-to', 'package'], { kind: 'object', object: 'socket', count: 1 }],
    [['-bind-to', 'user:1,0'], { kind: 'user', lists: [[1], [0]] }],
    [['-bind-to', 'user:2+0,3+1'], { kind: 'user', lists: [[0, 2], [1, 3]] }],
  ];
  for (const [argv, want] of cases) {
    it(`${argv.join(' ') || '(not given)'}`, () => {
      expect(request([...argv, '-n', '2', './a']).bindTo).toEqual(want);
    });
  }
});

describe('-map-by and --report-bindings', () => {
  it('map-by objects and ppr', () => {
    expect(request(['-map-by', 'socket', './a']).mapBy).toEqual({ kind: 'object', object: 'socket' });
    expect(request(['--map-by', 'core', './a']).mapBy).toEqual({ kind: 'object', object: 'core' });
    expect(request(['-map-by', 'ppr:2:numa', './a']).mapBy).toEqual({ kind: 'ppr', perObject: 2, object: 'numa' });
    expect(request(['./a']).mapBy).toBeUndefined();
  });
  it('--report-bindings', () => {
    expect(request(['--report-bindings', './a']).reportBindings).toBe(true);
    expect(request(['-report-bindings', './a']).reportBindings).toBe(true);
    expect(request(['./a']).reportBindings).toBe(false);
  });
});

describe('bad values: one bad-value error with a hint, exit status 2', () => {
  const bad: Array<[string[], RegExp]> = [
    [['-bind-to', 'bogus'], /-bind-to does not know 'bogus'/],
    [['-bind-to', 'core:0'], /positive count after 'core:'/],
    [['-bind-to', 'core:x'], /positive count/],
    [['-bind-to', 'core:1:2'], /does not know 'core:1:2'/],
    [['-bind-to', 'user:'], /needs a CPU list/],
    [['-bind-to', 'user:1,,2'], /bad CPU entry ''/],
    [['-bind-to', 'user:a'], /bad CPU entry 'a'/],
    [['-map-by', 'slot'], /-map-by does not know 'slot'/],
    [['-map-by', 'ppr:0:core'], /positive count/],
    [['-map-by', 'ppr:2'], /ppr:N:OBJECT/],
    [['-map-by', 'ppr:2:board2'], /does not know/],
    [['-bind-to', 'core', '-bind-to', 'none'], /given twice/],
  ];
  for (const [argv, re] of bad) {
    it(argv.join(' '), () => {
      const e = failure([...argv, './a']);
      expect(e.message).toMatch(re);
      expect(e.exitStatus).toBe(2);
      expect(e.hint).toBeTruthy();
    });
  }
});
