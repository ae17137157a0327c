// Words for what happened: one rank's outcome, the failure summary grouped like srun's
// ("ranks 2-5 on h2: exited with code 3"), and the --dry-run placement table. Pure string functions.
import type { JobOutcome, JobPlan, RankOutcome } from '../model/types.js';
import { signalNumber } from '../run/exit-status.js';

export function describeOutcome(o: RankOutcome): string {
  switch (o.kind) {
    case 'exited':
      if (o.oomLimitBytes !== undefined) return `exceeded its ${formatBytes(o.oomLimitBytes)} memory limit (exited with code ${o.code})`;
      return `exited with code ${o.code}`;
    case 'signaled': {
      if (o.oomLimitBytes !== undefined) return `exceeded its ${formatBytes(o.oomLimitBytes)} memory limit (killed by ${o.signal})`;
      const n = signalNumber(o.signal);
      return `was killed by ${o.signal}${n ? ` (signal ${n})` : ''}`;
    }
    case 'not-started':
      return `could not be started: ${o.reason}`;
    case 'lost':
      return `was lost: ${o.reason}`;
  }
}

/** 100 MiB, 1.5 GiB, 512 B: binary units, at most one decimal. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  const text = u === 0 || Number.isInteger(v) ? String(Math.round(v)) : v.toFixed(1);
  return `${text} ${units[u]}`;
}

/** "0-3,5,7-8" for a sorted list of ranks. */
export function rankRanges(ranks: readonly number[]): string {
  const out: string[] = [];
  let i = 0;
  while (i < ranks.length) {
    let j = i;
    while (j + 1 < ranks.length && (ranks[j + 1] as number) === (ranks[j] as number) + 1) j++;
    out.push(i === j ? `${ranks[i]}` : `${ranks[i]}-${ranks[j]}`);
    i = j + 1;
  }
  return out.join(',');
}

function isSuccess(o: RankOutcome): boolean {
  return o.kind === 'exited' && o.code === 0;
}

/**
 * One line per (host, outcome) group of ranks that did not succeed; empty when all succeeded. `fresh`: leave
 * out the ranks whose failure was already said when it happened (outcome.announced), so stderr says each
 * fact once.
 */
export function failureSummary(outcome: JobOutcome, fresh = false): string[] {
  const groups = new Map<string, { host: string; what: string; spawn: number | undefined; ranks: number[] }>();
  const said = new Set(fresh ? (outcome.announced ?? []) : []);
  for (const r of outcome.ranks) {
    if (isSuccess(r.outcome) || said.has(r.rank)) continue;
    const what = describeOutcome(r.outcome).replace(/^was /, '');
    const key = `${r.host}\0${what}\0${r.spawn?.group ?? 0}`;
    let g = groups.get(key);
    if (!g) {
      g = { host: r.host, what, spawn: r.spawn?.group, ranks: [] };
      groups.set(key, g);
    }
    g.ranks.push(r.spawn?.rank ?? r.rank);
  }
  return [...groups.values()].map((g) => {
    const sorted = [...g.ranks].sort((a, b) => a - b);
    const noun = sorted.length === 1 ? 'rank' : 'ranks';
    return `${noun} ${rankRanges(sorted)}${g.spawn !== undefined ? ` of spawn ${g.spawn}` : ''} on ${g.host}: ${g.what}`;
  });
}

/** The placement as a table: host, ranks, count. `bold` styles the header (on a TTY). */
/** What --dry-run found out about one segment's MPI (src/mpi). */
export interface SegmentMpiInfo {
  segment: number;
  program: string;
  /** openmpi, mpich, or null: not an MPI program, or not known which. */
  family: string | null;
  usesMpi: boolean;
  via: string;
}

export function placementTable(plan: JobPlan, bold: (s: string) => string = (s) => s, mpi: readonly SegmentMpiInfo[] = []): string {
  const rows = plan.proxies.map((p) => [p.host, String(p.ranks.length), rankRanges(p.ranks)]);
  const head = ['HOST', 'NRANKS', 'RANKS'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]): string => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ');
  const lines = [bold(fmt(head)), ...rows.map(fmt)];
  const source =
    plan.hostSource.kind === 'hostfile'
      ? `host file ${plan.hostSource.path}`
      : plan.hostSource.kind === 'batch'
        ? `${plan.hostSource.system} allocation (${plan.hostSource.variable})`
        : plan.hostSource.kind === 'cmdline'
          ? 'command line (-hosts)'
          : 'this host (no host list given)';
  lines.push(`${plan.size} rank${plan.size === 1 ? '' : 's'} on ${plan.proxies.length} host${plan.proxies.length === 1 ? '' : 's'}; hosts from ${source}`);
  lines.push(`PMI_process_mapping=${plan.processMapping || '(omitted: too long)'}`);
  for (const m of mpi) lines.push(`MPI of ${m.program}: ${m.family ?? (m.usesMpi ? 'unknown' : 'none')} (${m.via})`);
  return lines.join('\n') + '\n';
}

/**
 * `bindings`: CPU list by rank for the ranks of this host ("0-1", or null: not bound), and with -membind the memory
 * policy ("bind:0", null: the default); ranks of other hosts are bound by their own proxy from their own topology
 * and have no entry.
 */
export function placementJson(plan: JobPlan, bindings?: ReadonlyMap<number, { cpus: string | null; mems?: string | null }>, mpi?: readonly SegmentMpiInfo[]): string {
  return (
    JSON.stringify(
      {
        version: 1,
        size: plan.size,
        kvsname: plan.kvsname,
        hostSource: plan.hostSource,
        processMapping: plan.processMapping,
        hosts: plan.proxies.map((p) => ({ host: p.host, ranks: p.ranks })),
        ranks: plan.ranks.map((r) => ({
          rank: r.rank,
          host: r.host,
          localRank: r.localRank,
          segment: r.segment,
          program: r.program,
          args: r.args,
          ...(bindings?.has(r.rank) ? { cpus: bindings.get(r.rank)?.cpus ?? null } : {}),
          ...(bindings?.get(r.rank)?.mems !== undefined ? { mems: bindings.get(r.rank)?.mems ?? null } : {}),
        })),
        ...(mpi ? { mpi } : {}),
      },
      null,
      2,
    ) + '\n'
  );
}
