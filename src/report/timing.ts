// --timing: the wall time of each launch phase, printed on stderr after the job. Pure: the numbers come
// from main.ts (start-up, parse, plan, measured around those calls) and from JobOutcome.phases.
import type { PhaseTimes } from '../model/types.js';

export interface TimingInput {
  /** process start to main() (node and module loading) */
  startupMs: number;
  parseMs: number;
  planMs: number;
  /** undefined for --dry-run: nothing was launched */
  phases?: PhaseTimes;
  hosts: number;
  ranks: number;
}

export interface TimingRow {
  phase: string;
  /** null: the phase was not reached (e.g. no PMI barrier in a job of plain programs) */
  ms: number | null;
  what: string;
}

/** The phases in order; each is the time since the end of the previous one that was reached. */
export function timingRows(t: TimingInput): TimingRow[] {
  const rows: TimingRow[] = [
    { phase: 'start-up', ms: t.startupMs, what: 'node and module loading, until main()' },
    { phase: 'parse', ms: t.parseMs, what: 'command line, environment, config files' },
    { phase: 'plan', ms: t.planMs, what: 'host list and placement' },
  ];
  const p = t.phases;
  if (!p) return rows;
  const hosts = `${t.hosts} host${t.hosts === 1 ? '' : 's'}`;
  const ranks = `${t.ranks} rank${t.ranks === 1 ? '' : 's'}`;
  let last = 0;
  const since = (at: number | undefined): number | null => {
    if (at === undefined) return null;
    const d = Math.max(0, at - last);
    last = at;
    return d;
  };
  rows.push({
    phase: 'ranks started',
    ms: since(p.ranksStartedMs),
    what: p.ranksStartedMs === undefined ? `not every rank started` : `proxies up on ${hosts}, ${ranks} spawned`,
  });
  rows.push({
    phase: 'PMI init barrier',
    ms: since(p.firstBarrierMs),
    what: p.firstBarrierMs === undefined ? 'no PMI barrier (not an MPI program, or it failed first)' : 'until the first PMI barrier completed (MPI_Init)',
  });
  rows.push({ phase: 'run', ms: since(p.lastRankEndedMs), what: 'until the last rank ended' });
  rows.push({ phase: 'teardown', ms: since(p.doneMs), what: 'leftovers killed, cgroups removed, output flushed' });
  return rows;
}

function ms(n: number): string {
  return n < 10 ? n.toFixed(1) : String(Math.round(n));
}

/** The block printed on stderr. */
export function timingText(t: TimingInput): string {
  const rows = timingRows(t);
  const total = t.startupMs + t.parseMs + t.planMs + (t.phases?.doneMs ?? 0);
  const all = [...rows.map((r) => [r.phase, r.ms === null ? '-' : ms(r.ms), r.what]), ['total', ms(total), t.phases ? 'process start to job done' : 'process start to plan']];
  const w0 = Math.max(...all.map((r) => (r[0] ?? '').length));
  const w1 = Math.max(...all.map((r) => (r[1] ?? '').length));
  const lines = all.map(([a = '', b = '', c = '']) => `  ${a.padEnd(w0)}  ${b.padStart(w1)} ${b === '-' ? '  ' : 'ms'}  ${c}`.trimEnd());
  return `tsmpiexec: timing (wall clock)\n${lines.join('\n')}\n`;
}
