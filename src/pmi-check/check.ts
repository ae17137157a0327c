// The work of `tsmpiexec pmi-check`, one rank's side: connect the way an MPICH rank does (PMI_FD, else PMI_PORT
// with the initack handshake), init, barrier, an all-to-all exchange of N keys per rank (put, barrier, get and
// verify every rank's keys), then a round that hands every rank's timings to rank 0 for a summary, and finalize.
// No process.* here: the entry point (main.ts) passes the environment and prints what this returns.
import { createHash } from 'node:crypto';
import { connectFromEnv, parsePmiPort, PmiClient, type ConnectDeps } from '../pmi/client.js';

export type Transport = 'fd' | 'tcp' | 'unix';

export interface CheckOptions {
  keys: number;
  /** Per PMI request (a barrier waits for the slowest rank). */
  timeoutMs: number;
  /**
   * Rank 0 spawns this many processes (PMI-1 mcmd=spawn) running the same check as a group of their own, which
   * verify they were spawned (PMI_SPAWNED=1 and the parent's preput in their KVS). Needs spawnArgv.
   */
  spawn?: number;
  /** argv that runs `tsmpiexec` (the children get `pmi-check` and the options after it). */
  spawnArgv?: string[];
}

/** The preput key MPICH's MPI_Comm_spawn uses; pmi-check puts its own marker there. */
export const PARENT_KEY = 'PARENT_ROOT_PORT_NAME';
const PARENT_PREFIX = 'pmi-check-parent:';

export interface PhaseTimes {
  connect: number;
  init: number;
  barrier: number;
  exchange: number;
  finalize: number;
  total: number;
}

export interface RankReport {
  rank: number;
  size: number;
  kvsname: string;
  transport: Transport;
  keys: number;
  ms: PhaseTimes;
  /** A spawned rank: its parent group's kvsname (read from the preput). */
  parent?: string;
  /** Rank 0 with --spawn: how many processes it spawned. */
  spawned?: number;
}

export interface Stat {
  min: number;
  median: number;
  max: number;
  /** the rank with the max */
  slowest: number;
}

export interface Summary {
  ranks: number;
  keys: number;
  kvsname: string;
  init: Stat;
  barrier: Stat;
  exchange: Stat;
}

export type Phase = 'connect' | 'init' | 'barrier' | 'exchange' | 'spawn' | 'report' | 'finalize';

export class CheckFailure extends Error {
  constructor(
    readonly phase: Phase,
    message: string,
    /** the client, if connected, so the caller can abort the job */
    readonly client?: PmiClient,
  ) {
    super(message);
    this.name = 'CheckFailure';
  }
}

export class NoPmiError extends Error {}

export function transportOf(env: Record<string, string | undefined>): Transport | undefined {
  if (env.PMI_FD !== undefined && env.PMI_FD !== '') return 'fd';
  if (env.PMI_PORT !== undefined && env.PMI_PORT !== '') return parsePmiPort(env.PMI_PORT)?.kind === 'unix' ? 'unix' : 'tcp';
  return undefined;
}

export function keyName(rank: number, i: number): string {
  return `pmichk-${rank}-${i}`;
}

/** The value rank `rank` puts under its i-th key: derived from the kvsname too, so a stale KVS cannot pass. */
export function keyValue(kvsname: string, rank: number, i: number): string {
  const h = createHash('sha256').update(`${kvsname}/${rank}/${i}`).digest('hex').slice(0, 16);
  return `${rank}.${i}.${h}`;
}

function timeKey(rank: number): string {
  return `pmichk-time-${rank}`;
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

export function stat(values: Array<{ rank: number; v: number }>): Stat {
  const sorted = [...values].sort((a, b) => a.v - b.v);
  const n = sorted.length;
  const mid = n % 2 === 1 ? (sorted[(n - 1) / 2]?.v ?? 0) : ((sorted[n / 2 - 1]?.v ?? 0) + (sorted[n / 2]?.v ?? 0)) / 2;
  const last = sorted[n - 1];
  return { min: round(sorted[0]?.v ?? 0), median: round(mid), max: round(last?.v ?? 0), slowest: last?.rank ?? 0 };
}

/**
 * One rank's check. Resolves with its report (and, on rank 0, the summary); rejects with CheckFailure naming the
 * phase, or NoPmiError when the environment names no PMI server.
 */
export async function runCheck(
  env: Record<string, string | undefined>,
  opts: CheckOptions,
  now: () => number,
  deps: ConnectDeps = {},
): Promise<{ report: RankReport; summary?: Summary }> {
  const transport = transportOf(env);
  if (transport === undefined) throw new NoPmiError('neither PMI_FD nor PMI_PORT is set');
  const t0 = now();
  let client: PmiClient | undefined;
  try {
    client = await connectFromEnv(env, { timeoutMs: opts.timeoutMs, ...deps });
  } catch (e) {
    throw new CheckFailure('connect', (e as Error).message);
  }
  if (!client) throw new NoPmiError('neither PMI_FD nor PMI_PORT is set');
  const c = client;
  const tConnect = now();
  let phase: Phase = 'init';
  try {
    const { version } = await c.init();
    if (version !== 1) throw new Error(`server answered PMI version ${version}, expected 1`);
    const maxes = await c.getMaxes();
    const kvsname = await c.getMyKvsname();
    if (kvsname === '') throw new Error('empty kvsname');
    const { rank, size } = c;
    if (!Number.isInteger(rank) || !Number.isInteger(size) || rank < 0 || rank >= size) throw new Error(`bad rank ${rank} of ${size}`);
    const longest = keyName(size - 1, Math.max(0, opts.keys - 1));
    if (longest.length >= maxes.keylenMax) throw new Error(`key ${longest} exceeds the server's keylen_max ${maxes.keylenMax}`);
    let parent: string | undefined;
    if (env.PMI_SPAWNED === '1') {
      const marker = await c.get(kvsname, PARENT_KEY);
      if (marker === undefined) throw new Error(`PMI_SPAWNED=1 but ${PARENT_KEY} is not in the KVS (the spawner's preput is lost)`);
      parent = marker.startsWith(PARENT_PREFIX) ? marker.slice(PARENT_PREFIX.length) : marker;
    }
    const tInit = now();

    phase = 'barrier';
    await c.barrier();
    const tBarrier = now();

    phase = 'exchange';
    for (let i = 0; i < opts.keys; i++) await c.put(kvsname, keyName(rank, i), keyValue(kvsname, rank, i));
    await c.barrier();
    for (let r = 0; r < size; r++) {
      for (let i = 0; i < opts.keys; i++) {
        const key = keyName(r, i);
        const got = await c.get(kvsname, key);
        const want = keyValue(kvsname, r, i);
        if (got === undefined) throw new Error(`key ${key} (rank ${r}) is missing after the barrier`);
        if (got !== want) throw new Error(`key ${key} has ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
      }
    }
    const tExchange = now();

    let spawned: number | undefined;
    if (opts.spawn !== undefined && opts.spawn > 0) {
      phase = 'spawn';
      if (rank === 0) {
        const argv = opts.spawnArgv ?? [];
        if (argv.length === 0) throw new Error('no command to spawn');
        await c.spawn(
          [{ command: argv[0] as string, args: [...argv.slice(1), 'pmi-check', '--keys', String(opts.keys), '--timeout', String(opts.timeoutMs / 1000)], maxprocs: opts.spawn }],
          [[PARENT_KEY, `${PARENT_PREFIX}${kvsname}`]],
        );
        spawned = opts.spawn;
      }
    }

    phase = 'report';
    const mine = [tInit - tConnect, tBarrier - tInit, tExchange - tBarrier].map((v) => Math.round(v * 1000)).join(',');
    await c.put(kvsname, timeKey(rank), mine);
    await c.barrier();
    let summary: Summary | undefined;
    if (rank === 0) {
      const rows: Array<{ rank: number; init: number; barrier: number; exchange: number }> = [];
      for (let r = 0; r < size; r++) {
        const v = await c.get(kvsname, timeKey(r));
        const parts = (v ?? '').split(',').map(Number);
        if (v === undefined || parts.length !== 3 || parts.some((p) => !Number.isFinite(p))) throw new Error(`rank ${r}'s timings are missing or garbled`);
        rows.push({ rank: r, init: (parts[0] as number) / 1000, barrier: (parts[1] as number) / 1000, exchange: (parts[2] as number) / 1000 });
      }
      summary = {
        ranks: size,
        keys: opts.keys,
        kvsname,
        init: stat(rows.map((x) => ({ rank: x.rank, v: x.init }))),
        barrier: stat(rows.map((x) => ({ rank: x.rank, v: x.barrier }))),
        exchange: stat(rows.map((x) => ({ rank: x.rank, v: x.exchange }))),
      };
    }

    phase = 'finalize';
    const tBeforeFinalize = now();
    await c.finalize();
    const tEnd = now();
    c.close();
    const report: RankReport = {
      rank,
      size,
      kvsname,
      transport,
      keys: opts.keys,
      ...(parent !== undefined ? { parent } : {}),
      ...(spawned !== undefined ? { spawned } : {}),
      ms: {
        connect: round(tConnect - t0),
        init: round(tInit - tConnect),
        barrier: round(tBarrier - tInit),
        exchange: round(tExchange - tBarrier),
        finalize: round(tEnd - tBeforeFinalize),
        total: round(tEnd - t0),
      },
    };
    return summary ? { report, summary } : { report };
  } catch (e) {
    throw new CheckFailure(phase, (e as Error).message, c);
  }
}

const TRANSPORT_LABEL: Record<Transport, string> = { fd: 'PMI_FD', tcp: 'PMI_PORT tcp', unix: 'PMI_PORT unix' };

function ms(v: number): string {
  return `${v.toFixed(1)} ms`;
}

export function formatReport(r: RankReport, host: string, pid: number): string {
  const t = r.ms;
  return (
    `pmi-check: rank ${r.rank} of ${r.size} on ${host} (pid ${pid}, ${TRANSPORT_LABEL[r.transport]}): ` +
    `connect ${ms(t.connect)}, init ${ms(t.init)}, barrier ${ms(t.barrier)}, ` +
    `exchange ${r.keys * r.size} keys ${ms(t.exchange)}, finalize ${ms(t.finalize)}, total ${ms(t.total)}` +
    (r.spawned !== undefined ? `; spawned ${r.spawned} process${r.spawned === 1 ? '' : 'es'}` : '') +
    (r.parent !== undefined ? `; spawned by ${r.parent}` : '')
  );
}

export function formatSummary(s: Summary): string {
  const f = (name: string, x: Stat): string => `${name} ${x.min.toFixed(1)}/${x.median.toFixed(1)}/${x.max.toFixed(1)} ms (slowest rank ${x.slowest})`;
  return (
    `pmi-check: OK: ${s.ranks} rank${s.ranks === 1 ? '' : 's'}, ${s.keys} key${s.keys === 1 ? '' : 's'} each, ` +
    `${s.ranks * s.keys} per rank read back; min/median/max ${f('init', s.init)}, ${f('barrier', s.barrier)}, ${f('exchange', s.exchange)}`
  );
}
