// The argv the isolation builds for the optional native helper (native/helper.c), next to the shell recipe it
// replaces, and when the helper is used at all. The helper's own behaviour is tested for real in
// test/integration/native-helper.test.ts, and every containment case runs both ways in test/e2e/containment.
import { describe, expect, it } from 'vitest';
import { wrapArgv } from '../../src/isolate/wrapper.js';
import { holderArgv } from '../../src/isolate/holder.js';
import { findNativeHelper } from '../../src/isolate/native.js';
import { probeCapabilities } from '../../src/isolate/probe.js';
import { makeFakeHost } from '../fixtures/isolate/fake-host.js';

const H = '/opt/tsmpiexec/dist/native/tsmpiexec-helper';

describe('the rank wrapper with the native helper', () => {
  it('joins every cgroup, enters the namespace and execs in one argv, program args untouched', () => {
    const argv = wrapArgv(
      { sh: '/bin/sh', rank: 3, join: ['/cg/a/cgroup.procs', '/cg/b/cgroup.procs'], mountNs: { nsenter: '/usr/bin/nsenter', nsPath: '/proc/9/ns/mnt' }, helper: H },
      ['/bin/prog', '--', '--join', 'x y'],
    );
    expect(argv).toEqual([H, 'exec', '--join', '/cg/a/cgroup.procs', '--join', '/cg/b/cgroup.procs', '--mntns', '/proc/9/ns/mnt', '--label', 'rank 3', '--', '/bin/prog', '--', '--join', 'x y']);
  });

  it('leaves a launch without cgroups or namespace alone, helper or not', () => {
    expect(wrapArgv({ sh: '/bin/sh', rank: 0, join: [], helper: H }, ['/bin/true'])).toEqual(['/bin/true']);
  });

  it('without the helper is the shell recipe (sh joins, nsenter enters)', () => {
    const argv = wrapArgv({ sh: '/bin/sh', rank: 1, join: ['/cg/a/cgroup.procs'], mountNs: { nsenter: '/usr/bin/nsenter', nsPath: '/proc/9/ns/mnt' } }, ['/bin/prog']);
    expect(argv[0]).toBe('/bin/sh');
    expect(argv[2]).toContain('echo $$ > /cg/a/cgroup.procs');
    expect(argv[2]).toContain('exec /usr/bin/nsenter --mount=/proc/9/ns/mnt --wd=. -- "$@"');
    expect(argv.slice(-1)).toEqual(['/bin/prog']);
  });
});

describe('the /tmp namespace holder with the native helper', () => {
  const base = { sh: '/bin/sh', setpriv: '/usr/bin/setpriv', unshare: '/usr/bin/unshare', jobId: 'j1', uid: 1000, gid: 1000, join: [], helper: H };

  it('passes the tmpfs options (flags are the helper\'s), names, kept entries and size', () => {
    expect(holderArgv({ ...base, tmpfsSize: 4096, keep: ['/tmp/ws', '/dev/shm/seg'] })).toEqual([
      H, 'holder', '--data', 'mode=0700,uid=1000,gid=1000,size=4096', '--tmp-name', 'tsmpiexec-j1-tmp', '--shm-name', 'tsmpiexec-j1-shm', '--keep', '/tmp/ws', '--keep', '/dev/shm/seg',
    ]);
  });

  it('binds a batch scratch directory over /tmp', () => {
    expect(holderArgv({ ...base, tmpSource: '/scratch/x' }).join(' ')).toContain('--tmp-source /scratch/x');
  });

  it('joins cgroups through the helper too when asked to', () => {
    const argv = holderArgv({ ...base, join: ['/cg/h/cgroup.procs'] });
    expect(argv.slice(0, 6)).toEqual([H, 'exec', '--join', '/cg/h/cgroup.procs', '--label', 'the /tmp namespace holder']);
    expect(argv.slice(7, 9)).toEqual([H, 'holder']);
  });

  it('without the helper is the setpriv/unshare/mount recipe with nosuid,nodev in the mount options', () => {
    const { helper: _h, ...shell } = base;
    const argv = holderArgv(shell);
    expect(argv.slice(0, 4)).toEqual(['/usr/bin/setpriv', '--pdeathsig', 'KILL', '/usr/bin/unshare']);
    expect(argv.join(' ')).toContain('mode=0700,uid=1000,gid=1000,nosuid,nodev');
  });
});

describe('whether the helper is used', () => {
  it('is found where make build puts it, unless TSMPIEXEC_NATIVE=0', () => {
    const found = findNativeHelper({});
    if (found !== undefined) expect(found).toMatch(/\/dist\/native\/tsmpiexec-helper$/);
    expect(findNativeHelper({ TSMPIEXEC_NATIVE: '0' })).toBeUndefined();
  });

  it('is part of the probed tools only when the deps name one', () => {
    const h = makeFakeHost({ layout: 'hybrid', mountNsOk: true });
    try {
      expect(probeCapabilities(h.deps).tools.helper).toBeUndefined();
      expect(probeCapabilities({ ...h.deps, nativeHelper: () => H }).tools.helper).toBe(H);
    } finally {
      h.dispose();
    }
  });
});
