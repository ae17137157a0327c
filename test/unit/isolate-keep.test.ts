import { describe, expect, it } from 'vitest';
import { keepBindLines, keepEntries, keepOpenLines, MAX_KEEP } from '../../src/isolate/keep-visible.js';

describe('host /tmp entries a private /tmp must keep visible', () => {
  it('keeps the top-level entry of programs and working directories under /tmp and /dev/shm', () => {
    expect(keepEntries(['/usr/bin/true', '/tmp/ci/build/app', '/tmp/ci', '/tmp/x.out', '/dev/shm/seg'])).toEqual({
      ok: true,
      entries: ['/dev/shm/seg', '/tmp/ci', '/tmp/x.out'],
    });
    expect(keepEntries(['/home/u/app', '/tmpfoo/x'])).toEqual({ ok: true, entries: [] });
  });
  it('gives up when the job runs in /tmp itself or needs too many entries', () => {
    expect(keepEntries(['/tmp'])).toEqual({ ok: false, reason: 'the job runs in /tmp itself' });
    const many = Array.from({ length: MAX_KEEP + 1 }, (_, i) => `/tmp/d${i}`);
    expect(keepEntries(many).ok).toBe(false);
  });
  it('opens each entry before the tmpfs and binds it back after, without path canonicalisation', () => {
    expect(keepOpenLines(['/tmp/a b'])).toEqual([`exec 3<'/tmp/a b'`]);
    expect(keepBindLines(['/tmp/a'])[0]).toContain('mount --no-canonicalize --bind /proc/self/fd/3 /tmp/a');
  });
});

import { ownerTag } from '../../src/isolate/janitor.js';

describe('job cgroup owner tag', () => {
  it('names pid, pid namespace and start time, so other namespaces are never swept', () => {
    const tag = ownerTag();
    expect(tag).toMatch(new RegExp(`^p${process.pid}_\\d+_\\d+$`));
    expect(tag).not.toMatch(/_0_|_0$/);
  });
});

import { holderArgv } from '../../src/isolate/holder.js';
import { podArgv } from '../../src/isolate/pod-argv.js';
import { scratchTmpDir } from '../../src/isolate/keep-visible.js';

describe('a batch scratch directory backs the private /tmp (HTCondor)', () => {
  const tools = { sh: '/bin/sh', unshare: '/usr/bin/unshare', setpriv: '/usr/bin/setpriv', bwrap: '/usr/bin/bwrap' };
  it('binds it over /tmp instead of a tmpfs, as root and in both pods', () => {
    const src = scratchTmpDir('/scratch/dir_7/', 'j1');
    expect(src).toBe('/scratch/dir_7/tsmpiexec-j1-tmp');
    const holder = holderArgv({ sh: '/bin/sh', setpriv: '/usr/bin/setpriv', unshare: '/usr/bin/unshare', jobId: 'j1', uid: 0, gid: 0, join: [], tmpSource: src }).join(' ');
    expect(holder).toContain(`mount --bind ${src} /tmp`);
    expect(holder).not.toMatch(/tmpfs[^&]* \/tmp/);
    expect(holder).toMatch(/tmpfs \S+ \/dev\/shm|tmpfs[^&]*\/dev\/shm/);
    const bw = podArgv({ tool: 'bwrap', tools, jobId: 'j1', uid: 1000, gid: 1000, tmpSource: src }) ?? [];
    expect(bw.join(' ')).toContain(`--bind ${src} /tmp`);
    expect(bw.join(' ')).not.toContain('--tmpfs /tmp');
    const us = podArgv({ tool: 'unshare', tools, jobId: 'j1', uid: 1000, gid: 1000, tmpSource: src }) ?? [];
    expect(us.join(' ')).toContain(`mount --bind ${src} /tmp`);
  });
});

describe('the host paths a job names', () => {
  it('are its programs and working directories, and the arguments naming existing files under /tmp or /dev/shm', async () => {
    const { namedPaths } = await import('../../src/isolate/keep-visible.js');
    const existing = new Set(['/tmp/in.txt', '/tmp/w/data', '/tmp/cfg.json', '/dev/shm/seg']);
    const asked: string[] = [];
    const exists = (p: string): boolean => {
      asked.push(p);
      return existing.has(p);
    };
    const got = namedPaths(
      [
        { file: '/usr/bin/cat', cwd: '/tmp/w', args: ['/tmp/in.txt', 'data', '--config=/tmp/cfg.json', '../w/./data', '/tmp/missing', '-v', 'x=/tmp/in.txt'] },
        { file: '/opt/app', cwd: '/home/u', args: ['/dev/shm/seg', 'relative', '/etc/passwd'] },
      ],
      exists,
    );
    expect(got.sort()).toEqual(['/dev/shm/seg', '/home/u', '/opt/app', '/tmp/cfg.json', '/tmp/in.txt', '/tmp/w', '/tmp/w/data', '/usr/bin/cat'].sort());
    // only paths under the private roots are looked at
    expect(asked.every((p) => p.startsWith('/tmp/') || p.startsWith('/dev/shm/'))).toBe(true);
  });
});
