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
