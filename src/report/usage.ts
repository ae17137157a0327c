// The usage report (--report, --report-json): what each rank and host used, from the job's cgroups.
// Pure: outcome in, text or JSON out. A figure the host cannot measure is "unavailable" (null), never 0.
import type { JobOutcome, RankBindingInfo, UsageFigures } from '../model/types.js';
import { formatBytes, describeOutcome } from './summary.js';

const num = (n: number | null, f: (x: number) => string): string => (n === null ? 'unavailable' : f(n));
const secs = (s: number): string => s.toFixed(2);

/** Aligned table: one row per rank, then one per host, with a bar of each host's share of CPU and memory. */
export function usageTable(o: JobOutcome): string {
  const rows: string[][] = [['RANK', 'HOST', 'EXIT', 'CPU USER', 'CPU SYS', 'MEM PEAK', 'IO READ', 'IO WRITE', 'PIDS']];
  const byRank = new Map<number, UsageFigures>();
  for (const h of o.usage) for (const [r, u] of Object.entries(h.ranks)) byRank.set(Number(r), u);
  for (const r of o.ranks) {
    const u = byRank.get(r.rank);
    const exit = r.outcome.kind === 'exited' ? String(r.outcome.code) : describeOutcome(r.outcome).replace(/^was /, '');
    rows.push([
      r.spawn ? `${r.spawn.group}:${r.spawn.rank}` : String(r.rank),
      r.host,
      exit,
      u ? secs(u.cpuUserSec) : 'unavailable',
      u ? secs(u.cpuSysSec) : 'unavailable',
      u ? num(u.memPeakBytes, formatBytes) : 'unavailable',
      u ? num(u.ioReadBytes, formatBytes) : 'unavailable',
      u ? num(u.ioWriteBytes, formatBytes) : 'unavailable',
      u ? num(u.pidsPeak, String) : 'unavailable',
    ]);
  }
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  const fmt = (r: string[]): string => r.map((c, i) => (i < 3 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  const lines = rows.map(fmt);
  if (o.usage.length > 0) {
    const maxCpu = Math.max(...o.usage.map((h) => h.total.cpuUserSec + h.total.cpuSysSec), 1e-9);
    const maxMem = Math.max(...o.usage.map((h) => h.total.memPeakBytes ?? 0), 1);
    const bar = (v: number, max: number): string => '#'.repeat(Math.round((v / max) * 20)).padEnd(20, '.');
    lines.push('');
    const hw = Math.max(4, ...o.usage.map((h) => h.host.length));
    const contain = (h: (typeof o.usage)[number]): string => `cgroup ${h.cgroup}, tmp ${h.tmp}`;
    const cw = Math.max(11, ...o.usage.map((h) => contain(h).length));
    lines.push(`${'HOST'.padEnd(hw)}  ${'CONTAINMENT'.padEnd(cw)}  ${'CPU (user+sys)'.padEnd(31)}  MEM PEAK`);
    for (const h of o.usage) {
      const cpu = h.total.cpuUserSec + h.total.cpuSysSec;
      const mem = h.total.memPeakBytes;
      lines.push(
        `${h.host.padEnd(hw)}  ${contain(h).padEnd(cw)}  ${bar(cpu, maxCpu)} ${secs(cpu).padStart(7)} s  ${mem === null ? 'unavailable' : `${bar(mem, maxMem)} ${formatBytes(mem)}`}`,
      );
    }
  } else {
    lines.push('(no usage figures: the job ran without isolation)');
  }
  return lines.join('\n') + '\n';
}

/** What --report-json says about the run itself, next to the figures. */
export interface RunFacts {
  /** The command line as typed (tsmpiexec first). */
  argv: string[];
  exitStatus: number;
  /** When the job ended (epoch ms). */
  endedAtMs: number;
}

function outcomeKind(o: JobOutcome['ranks'][number]['outcome']): { outcome: string; reason: string | null } {
  return { outcome: o.kind, reason: o.kind === 'not-started' || o.kind === 'lost' ? o.reason : null };
}

export function usageJson(o: JobOutcome, run?: RunFacts): string {
  const byRank = new Map<number, UsageFigures>();
  for (const h of o.usage) for (const [r, u] of Object.entries(h.ranks)) byRank.set(Number(r), u);
  const bound = new Map<number, RankBindingInfo>();
  for (const h of o.usage) for (const [r, b] of Object.entries(h.bindings ?? {})) bound.set(Number(r), b);
  const ranks = o.ranks.map((r) => {
    const u = byRank.get(r.rank);
    const b = bound.get(r.rank);
    return {
      rank: r.rank,
      ...(r.spawn ? { spawn_group: r.spawn.group, spawn_rank: r.spawn.rank } : {}),
      host: r.host,
      ...outcomeKind(r.outcome),
      exit_code: r.outcome.kind === 'exited' ? r.outcome.code : null,
      signal: r.outcome.kind === 'signaled' ? r.outcome.signal : null,
      cpu_user_s: u ? u.cpuUserSec : null,
      cpu_sys_s: u ? u.cpuSysSec : null,
      mem_peak_bytes: u ? u.memPeakBytes : null,
      io_read_bytes: u ? u.ioReadBytes : null,
      io_write_bytes: u ? u.ioWriteBytes : null,
      pids_peak: u ? u.pidsPeak : null,
      oom_killed: u ? u.oomKilled : false,
      start_ms: r.times?.startMs ?? null,
      end_ms: r.times?.endMs ?? null,
      ...(b ? { cpus: b.cpus, mems: b.mems, gpus: b.gpus } : {}),
    };
  });
  const hosts = o.usage.map((h) => ({
    host: h.host,
    cgroup: h.cgroup,
    tmp: h.tmp,
    cpu_user_s: h.total.cpuUserSec,
    cpu_sys_s: h.total.cpuSysSec,
    mem_peak_bytes: h.total.memPeakBytes,
    io_read_bytes: h.total.ioReadBytes,
    io_write_bytes: h.total.ioWriteBytes,
  }));
  const facts = run
    ? {
        command_line: run.argv,
        exit_status: run.exitStatus,
        started_at: o.startedAtMs !== undefined ? new Date(o.startedAtMs).toISOString() : null,
        ended_at: new Date(run.endedAtMs).toISOString(),
      }
    : {};
  return JSON.stringify({ version: 1, ...facts, ranks, hosts }, null, 2) + '\n';
}
