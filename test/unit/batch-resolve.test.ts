// Where the hosts come from (user list over allocation over this host), the slot limit of an allocation,
// the --verbose line, and -launcher's default.
import { describe, expect, it } from 'vitest';
import { checkSlots, defaultLauncher, defaultRankCount, describeHosts, resolveHosts } from '../../src/hosts/resolve.js';
import { TsmpiError } from '../../src/util/errors.js';

const slurm = { SLURM_JOB_ID: '77', SLURM_JOB_NODELIST: 'n[1-2]', SLURM_TASKS_PER_NODE: '2(x2)', SLURM_JOB_CPUS_PER_NODE: '4(x2)' };
const noFile = (p: string): string => {
  throw Object.assign(new Error(p), { code: 'ENOENT' });
};
const deps = (env: Record<string, string>, readFile = noFile) => ({ readFile, hostname: 'login1', env });

describe('resolveHosts', () => {
  it('takes the allocation when neither -hosts nor -f is given; -n defaults to its slots', () => {
    const r = resolveHosts({}, deps(slurm));
    expect(r.hosts).toEqual([{ name: 'n1', slots: 2 }, { name: 'n2', slots: 2 }]);
    expect(r.source).toEqual({ kind: 'batch', system: 'Slurm', variable: 'SLURM_JOB_NODELIST, SLURM_TASKS_PER_NODE' });
    expect(defaultRankCount(r.hosts, undefined)).toBe(4);
    expect(describeHosts(r)).toBe('hosts from the Slurm allocation of job 77 (SLURM_JOB_NODELIST, SLURM_TASKS_PER_NODE): 2 hosts, 4 slots');
  });

  it('a user -hosts or -f wins, even over a malformed allocation, and --verbose says which was not used', () => {
    const broken = { ...slurm, SLURM_TASKS_PER_NODE: 'garbage' };
    const a = resolveHosts({ hosts: [{ name: 'x', slots: 3 }] }, deps(broken));
    expect(a.source).toEqual({ kind: 'cmdline' });
    expect(a.allocation).toBeUndefined();
    expect(describeHosts(a)).toBe('hosts from -hosts (the Slurm allocation in SLURM_JOB_NODELIST is not used)');
    const b = resolveHosts({ hostfile: '/h' }, deps(broken, () => 'y:2\n'));
    expect(b.hosts).toEqual([{ name: 'y', slots: 2 }]);
    expect(describeHosts(b)).toBe('hosts from host file /h (the Slurm allocation in SLURM_JOB_NODELIST is not used)');
  });

  it('this host without any of them; no env: no detection', () => {
    const r = resolveHosts({}, deps({}));
    expect(r).toEqual({ hosts: [{ name: 'login1' }], source: { kind: 'default' } });
    expect(describeHosts(r)).toBe('hosts: this host only (no -hosts, -f or batch allocation)');
    expect(resolveHosts({}, { readFile: noFile, hostname: 'h' }).source.kind).toBe('default');
  });

  it('a malformed allocation is an allocation error when it is the host source', () => {
    expect(() => resolveHosts({}, deps({ ...slurm, SLURM_TASKS_PER_NODE: '2,2,2' }))).toThrow(TsmpiError);
  });

  it('returns copies: placement may not change the allocation', () => {
    const r = resolveHosts({}, deps(slurm));
    r.hosts[0]!.slots = 99;
    expect(r.allocation?.hosts[0]?.slots).toBe(2);
  });
});

describe('checkSlots', () => {
  const r = resolveHosts({}, deps(slurm));
  it('allows up to the allocation\'s slots, and more with --oversubscribe', () => {
    expect(() => checkSlots(4, r, false)).not.toThrow();
    expect(() => checkSlots(5, r, true)).not.toThrow();
  });
  it('refuses more, naming the count and its variables, with the hint', () => {
    let e: unknown;
    try {
      checkSlots(5, r, false);
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(TsmpiError);
    const t = e as TsmpiError;
    expect(t.code).toBe('allocation');
    expect(t.message).toBe('5 ranks asked for, but the Slurm allocation has 4 slots (SLURM_JOB_NODELIST, SLURM_TASKS_PER_NODE)');
    expect(t.hint).toContain('--oversubscribe');
  });
  it('never limits user host lists (they wrap, as in Hydra)', () => {
    expect(() => checkSlots(100, resolveHosts({ hosts: [{ name: 'a', slots: 1 }] }, deps(slurm)), false)).not.toThrow();
    expect(() => checkSlots(100, resolveHosts({}, deps({})), false)).not.toThrow();
  });
});

describe('defaultLauncher', () => {
  it('slurm inside a Slurm job whose allocation gave the hosts', () => {
    expect(defaultLauncher(resolveHosts({}, deps(slurm)), slurm, true)).toBe('slurm');
    expect(defaultLauncher(resolveHosts({}, deps(slurm)), slurm, false)).toBe('slurm');
  });
  it('ssh or fork otherwise', () => {
    const noJobId = { SLURM_JOB_NODELIST: 'n[1-2]' };
    expect(defaultLauncher(resolveHosts({}, deps(noJobId)), noJobId, true)).toBe('ssh');
    expect(defaultLauncher(resolveHosts({ hosts: [{ name: 'a' }] }, deps(slurm)), slurm, true)).toBe('ssh');
    expect(defaultLauncher(resolveHosts({}, deps({})), {}, false)).toBe('fork');
    const lsf = { LSB_MCPU_HOSTS: 'a 1 b 1' };
    expect(defaultLauncher(resolveHosts({}, deps(lsf)), lsf, true)).toBe('ssh');
  });
});

describe('universe size (-usize)', () => {
  it('is the slots of the host list, one per usable CPU for this host alone, never below the job, -1 for INFINITE', async () => {
    const { universeSize } = await import('../../src/hosts/resolve.js');
    const hosts = [{ name: 'a', slots: 4 }, { name: 'b' }];
    expect(universeSize(undefined, hosts, undefined, false, 2, 8)).toBe(5);
    expect(universeSize('system', hosts, 3, false, 2, 8)).toBe(6);
    expect(universeSize(undefined, [{ name: 'me' }], undefined, true, 1, 8)).toBe(8);
    expect(universeSize(undefined, hosts, undefined, false, 9, 8)).toBe(9);
    expect(universeSize(12, hosts, undefined, false, 2, 8)).toBe(12);
    expect(universeSize(1, hosts, undefined, false, 2, 8)).toBe(2);
    expect(universeSize('infinite', hosts, undefined, false, 2, 8)).toBe(-1);
  });
});
