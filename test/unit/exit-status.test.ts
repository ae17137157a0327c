import { describe, expect, it } from 'vitest';
import { EXIT, exitStatus } from '../../src/run/exit-status.js';
import type { Cause } from '../../src/model/types.js';
import { failureSummary, rankRanges } from '../../src/report/summary.js';

const failed = (rank: number, code: number): Cause => ({ kind: 'rank-failed', rank, host: 'h', outcome: { kind: 'exited', code } });

describe('exit status (first cause wins)', () => {
  const table: Array<[string, Cause[], number]> = [
    ['success', [], 0],
    ['rank exit code', [failed(2, 3)], 3],
    ['exit code 256+ wraps like a shell', [failed(0, 257)], 1],
    ['signal 128+N', [{ kind: 'rank-failed', rank: 1, host: 'h', outcome: { kind: 'signaled', signal: 'SIGSEGV' } }], 139],
    ['SIGKILL', [{ kind: 'rank-failed', rank: 1, host: 'h', outcome: { kind: 'signaled', signal: 'SIGKILL' } }], 137],
    ['abort code', [{ kind: 'aborted', rank: 1, host: 'h', code: 7 }], 7],
    ['first cause wins over later ones', [{ kind: 'aborted', rank: 1, host: 'h', code: 7 }, failed(0, 3)], 7],
    ['timeout', [{ kind: 'timeout', seconds: 5 }, failed(0, 143)], EXIT.TIMEOUT],
    ['launch failure', [{ kind: 'launch-failed', host: 'x', message: 'no' }], EXIT.LAUNCH_FAILED],
    ['interrupted by SIGINT', [{ kind: 'signal', signal: 'SIGINT' }], 130],
    ['no finalize', [{ kind: 'no-finalize', rank: 0, host: 'h' }], EXIT.NO_FINALIZE],
    ['a singleton MPI rank', [{ kind: 'no-pmi', rank: 1, host: 'h' }], 1],
    ['a PMI protocol error or KVS limit', [{ kind: 'pmi-error', rank: 1, host: 'h', message: 'garbage' }, failed(1, 141)], EXIT.PMI],
    ['output failed', [{ kind: 'output-failed', path: '/x', message: 'ENOSPC' }], EXIT.OUTPUT_FAILED],
  ];
  it.each(table)('%s', (_name, causes, status) => {
    expect(exitStatus(causes)).toBe(status);
  });
});

describe('failure summary', () => {
  it('groups ranks by host and outcome like srun', () => {
    const lines = failureSummary({
      causes: [failed(2, 3)],
      ranks: [
        { rank: 0, host: 'h1', outcome: { kind: 'exited', code: 0 } },
        { rank: 2, host: 'h2', outcome: { kind: 'exited', code: 3 } },
        { rank: 3, host: 'h2', outcome: { kind: 'exited', code: 3 } },
        { rank: 4, host: 'h2', outcome: { kind: 'exited', code: 3 } },
        { rank: 7, host: 'h3', outcome: { kind: 'signaled', signal: 'SIGKILL' } },
      ],
      usage: [],
    });
    expect(lines).toEqual(['ranks 2-4 on h2: exited with code 3', 'rank 7 on h3: killed by SIGKILL (signal 9)']);
  });
  it('writes rank ranges', () => {
    expect(rankRanges([0, 1, 2, 3, 5, 7, 8])).toBe('0-3,5,7-8');
    expect(rankRanges([])).toBe('');
  });
});

describe('notices every host says alike', () => {
  it('names hosts in runs: h1-h3,h5, other names as they are', async () => {
    const { hostRanges } = await import('../../src/report/host-notices.js');
    expect(hostRanges(['h1', 'h2', 'h3', 'h5'])).toBe('h1-h3,h5');
    expect(hostRanges(['h16', ...Array.from({ length: 15 }, (_, i) => `h${i + 1}`)])).toBe('h1-h16');
    expect(hostRanges(['login', 'n1', 'n2', 'gpu7'])).toBe('login,n1-n2,gpu7');
    expect(hostRanges(['n01', 'n02'])).toBe('n01,n02');
  });

  it('holds per-host lines of several hosts and says each once, naming the hosts; other lines pass at once', async () => {
    const { HostNoticeMerger } = await import('../../src/report/host-notices.js');
    const out: string[] = [];
    const m = new HostNoticeMerger(new Set(['h1', 'h2', 'h3']), (l) => out.push(l), 60_000);
    m.add('isolation on h2: no cgroups; per-job TMPDIR');
    m.add('isolation on h1: no cgroups; per-job TMPDIR');
    m.add('binding on h3: one core per rank');
    m.add('a line about nothing in particular');
    expect(out).toEqual(['a line about nothing in particular']);
    m.add('isolation on h3: no cgroups; per-job TMPDIR');
    m.flush();
    expect(out).toEqual(['a line about nothing in particular', 'isolation on h1-h3: no cgroups; per-job TMPDIR', 'binding on h3: one core per rank']);
    m.add('could not remove on h2: /x');
    expect(out.at(-1)).toBe('could not remove on h2: /x');
    const one = new HostNoticeMerger(new Set(['h1']), (l) => out.push(l));
    one.add('isolation on h1: x');
    expect(out.at(-1)).toBe('isolation on h1: x');
  });
});
