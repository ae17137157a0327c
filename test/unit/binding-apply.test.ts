// Where the binding goes in a rank's argv: the helper's --cpus after the isolation's joins, taskset inside the wrapper.
import { describe, expect, it } from 'vitest';
import { chooseBinder, innerArgv, outerArgv } from '../../src/binding/apply.js';

const H = '/x/tsmpiexec-helper';

describe('binding argv', () => {
  it('chooses the helper, else taskset, else nothing', () => {
    expect(chooseBinder(H, '/usr/bin/taskset')).toEqual({ kind: 'helper', path: H });
    expect(chooseBinder(undefined, '/usr/bin/taskset')).toEqual({ kind: 'taskset', path: '/usr/bin/taskset' });
    expect(chooseBinder(undefined, undefined)).toEqual({ kind: 'none' });
  });
  it('the helper joins its own exec step, or adds one', () => {
    const b = chooseBinder(H, undefined);
    expect(outerArgv(b, [0, 1, 2, 5], [H, 'exec', '--join', 'p', '--label', 'rank 0', '--', 'a'], 'rank 0')).toEqual([H, 'exec', '--cpus', '0-2,5', '--join', 'p', '--label', 'rank 0', '--', 'a']);
    expect(outerArgv(b, [1], ['a', 'x'], 'rank 3')).toEqual([H, 'exec', '--cpus', '1', '--label', 'rank 3', '--', 'a', 'x']);
    expect(innerArgv(b, [1], ['a'])).toEqual(['a']);
  });
  it('taskset runs inside the wrapper, after its joins', () => {
    const b = chooseBinder(undefined, '/usr/bin/taskset');
    expect(innerArgv(b, [0, 1], ['a', 'x'])).toEqual(['/usr/bin/taskset', '-c', '0-1', 'a', 'x']);
    expect(outerArgv(b, [0, 1], ['sh', '-c', 's', 'a'], 'rank 0')).toEqual(['sh', '-c', 's', 'a']);
  });
  it('an unbound rank is left alone', () => {
    expect(innerArgv(chooseBinder(undefined, '/t'), undefined, ['a'])).toEqual(['a']);
    expect(outerArgv(chooseBinder(H, undefined), undefined, ['a'], 'rank 0')).toEqual(['a']);
  });
});
