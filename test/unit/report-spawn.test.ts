// Ranks of an MPI_Comm_spawn in the reports: named `1:0` (spawn 1, rank 0) in the usage table, the HTML report
// and the failure summary, with spawn_group / spawn_rank in the JSON, next to the world ranks by number.
import { describe, expect, it } from 'vitest';
import type { JobOutcome, JobPlan, UsageFigures } from '../../src/model/types.js';
import { renderHtml } from '../../src/report/html.js';
import { failureSummary } from '../../src/report/summary.js';
import { usageJson, usageTable } from '../../src/report/usage.js';

const fig: UsageFigures = { cpuUserSec: 0.5, cpuSysSec: 0.1, memPeakBytes: 1 << 20, ioReadBytes: 0, ioWriteBytes: 0, pidsPeak: 1, oomKilled: false };

const outcome: JobOutcome = {
  causes: [{ kind: 'rank-failed', rank: 3, host: 'h2', outcome: { kind: 'exited', code: 3 } }],
  ranks: [
    { rank: 0, host: 'h1', outcome: { kind: 'exited', code: 0 } },
    { rank: 1, host: 'h2', outcome: { kind: 'exited', code: 0 } },
    { rank: 2, host: 'h1', outcome: { kind: 'exited', code: 0 }, spawn: { group: 1, rank: 0 } },
    { rank: 3, host: 'h2', outcome: { kind: 'exited', code: 3 }, spawn: { group: 1, rank: 1 } },
    { rank: 4, host: 'h2', outcome: { kind: 'exited', code: 3 }, spawn: { group: 1, rank: 2 } },
  ],
  usage: [{ host: 'h2', cgroup: 'v1', tmp: 'private', total: fig, ranks: { 1: fig, 3: fig } }],
};

const plan: JobPlan = {
  size: 2,
  kvsname: 'kvs_1',
  proxies: [
    { index: 0, host: 'h1', ranks: [0] },
    { index: 1, host: 'h2', ranks: [1] },
  ],
  ranks: [0, 1].map((r) => ({ rank: r, proxy: r, host: `h${r + 1}`, localRank: 0, segment: 0, appnum: 0, program: './a', args: [] })),
  processMapping: '',
  hostSource: { kind: 'cmdline' },
};

describe('spawned ranks in the reports', () => {
  it('the usage table names them group:rank', () => {
    const rows = usageTable(outcome).split('\n').map((l) => l.split(/\s+/)[0]);
    expect(rows.slice(1, 6)).toEqual(['0', '1', '1:0', '1:1', '1:2']);
  });

  it('the JSON keeps the job-wide id and adds spawn_group and spawn_rank', () => {
    const j = JSON.parse(usageJson(outcome)) as { ranks: Array<Record<string, unknown>> };
    expect(j.ranks.map((r) => [r.rank, r.spawn_group, r.spawn_rank])).toEqual([
      [0, undefined, undefined],
      [1, undefined, undefined],
      [2, 1, 0],
      [3, 1, 1],
      [4, 1, 2],
    ]);
  });

  it('the failure summary groups them apart from world ranks, by their rank in the spawn', () => {
    expect(failureSummary(outcome)).toEqual(['ranks 1-2 of spawn 1 on h2: exited with code 3']);
  });

  it('the HTML report labels them group:rank', () => {
    const html = renderHtml({ outcome, plan, argv: ['tsmpiexec', '-n', '2', './a'], exitStatus: 3, generatedAt: '2026-11-21 12:00', version: '0.0.0' });
    expect(html).toContain('rank 1:1 on h2: exited with code 3');
    expect(html).toContain('<td>1:2</td>');
  });
});
