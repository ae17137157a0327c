// One job from a parsed command line to its exit status: hosts, placement, proxies, the Job, and the reports.
// Loaded by main.ts only when a job is to run (not for --version, --help or a proxy), to keep start-up short.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TsmpiError, ERROR_CODES } from '../util/errors.js';
import { EXIT, exitStatus } from './exit-status.js';
import { packageVersion } from '../util/package-root.js';
import { resolveHosts, defaultRankCount, checkSlots, describeHosts, defaultLauncher, universeSize } from '../hosts/resolve.js';
import { isSlurmTaskVar } from '../launch/slurm.js';
import { isLocalHost, localNames } from '../hosts/local.js';
import { place } from '../placement/place.js';
import { fileSink, type Sink } from '../io/sink.js';
import { fdSource } from '../io/stdin.js';
import { Job, localProxy } from './job.js';
import { remoteProxyFactory, type RemoteLaunch } from './proxies.js';
import { describeOutcome, failureSummary, placementJson, placementTable, type SegmentMpiInfo } from '../report/summary.js';
import { usageJson, usageTable } from '../report/usage.js';
import type { Paint } from '../report/style.js';
import { NO_PROGRESS, startProgress, wantProgress } from '../report/progress.js';
import type { JobPlan, JobRequest } from '../model/types.js';
import { msSinceStart } from '../util/clock.js';

/** The styles of our stdout and stderr (plain unless a TTY or FORCE_COLOR: see report/style.ts). */
export interface Ui {
  stdout: Paint;
  stderr: Paint;
}

/** What main measured before the job, for --timing and the HTML report. */
export interface Before {
  argv: string[];
  startupMs: number;
  parseMs: number;
}

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

function version(): string {
  return packageVersion();
}

async function writeAll(sink: Sink, text: string): Promise<void> {
  sink.write(Buffer.from(text));
  await sink.finish();
}

/** A report file of ours: created (or truncated) mode 0600, and 0600 even when it existed. */
function writeReport(err: Sink, ui: Ui, path: string, what: string, text: string): void {
  try {
    const fd = fs.openSync(path, 'w', 0o600);
    try {
      fs.fchmodSync(fd, 0o600);
      fs.writeFileSync(fd, text);
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    err.write(Buffer.from(ui.stderr.error(`tsmpiexec: cannot write the ${what} (${path}): ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`) + '\n'));
  }
}

/** The binding this host's ranks would get (--dry-run --json); loaded only then. */
async function dryRunBindings(req: JobRequest, plan: JobPlan, env: Record<string, string | undefined>): Promise<Map<number, { cpus: string | null; mems?: string | null }>> {
  const [{ localBinding }, { readTopology, usableCpus, usableMems }, { formatCpuList }, { localMems }, { memText }] = await Promise.all([
    import('../binding/cpus.js'),
    import('../topology/read.js'),
    import('../topology/cpulist.js'),
    import('../binding/mems.js'),
    import('../binding/apply.js'),
  ]);
  const out = new Map<number, { cpus: string | null; mems?: string | null }>();
  const names = localNames();
  const local = plan.proxies.filter((p) => isLocalHost(p.host, names));
  if (local.length === 0) return out;
  // one host's topology and affinity, read once for all of its proxies
  const topology = readTopology(env);
  const usable = usableCpus();
  for (const p of local) {
    const b = localBinding({ topology, usable, localRanks: p.ranks.length, bind: req.bindTo, ...(req.mapBy ? { map: req.mapBy } : {}) });
    const policy = req.membind && req.membind.kind !== 'none' ? req.membind : undefined;
    const cpusOf = p.ranks.map((_, i) => (b.kind === 'bound' ? b.cpus[i] : undefined));
    const m = policy ? localMems({ policy, topology, cpus: cpusOf, usable: usable ?? topology.pus.map((x) => x.cpu), mems: usableMems() }) : undefined;
    p.ranks.forEach((rank, i) => {
      const cpus = cpusOf[i];
      const mem = m?.kind === 'ok' ? m.perRank[i] : undefined;
      out.set(rank, { cpus: cpus ? formatCpuList(cpus) : null, ...(policy ? { mems: mem ? memText(mem) : null } : {}) });
    });
  }
  return out;
}

/** Which MPI each segment's program uses (--dry-run); a program that cannot be found is said, not fatal here. */
async function dryRunMpi(req: JobRequest, env: Record<string, string | undefined>): Promise<SegmentMpiInfo[]> {
  const [{ detectMpi }, { effectiveFamily }, { segmentEnv }, { resolveSegmentProgram }] = await Promise.all([
    import('../mpi/detect.js'),
    import('../mpi/wire-up.js'),
    import('./rank-env.js'),
    import('./resolve-program.js'),
  ]);
  return req.segments.map((s) => {
    const segEnv = segmentEnv(env, req.genv, s.env);
    const cwd = path.resolve(process.cwd(), s.wdir ?? req.wdir ?? '.');
    let file: string;
    try {
      file = resolveSegmentProgram(s.program, cwd, segEnv, env);
    } catch {
      return { segment: s.index, program: s.program, family: null, usesMpi: false, via: 'program not found' };
    }
    if (req.mpi === 'none') return { segment: s.index, program: s.program, family: null, usesMpi: false, via: '--mpi none' };
    const d = detectMpi(file, s.args, cwd, segEnv);
    const family = effectiveFamily(req.mpi, d) ?? null;
    return { segment: s.index, program: s.program, family, usesMpi: d.usesMpi, via: req.mpi === 'auto' ? d.via : `--mpi ${req.mpi}; detected ${d.family ?? 'none'}: ${d.via}` };
  });
}

/** `started` hands the caller the Job (main's stdout sink was made before it and reports a vanished reader). */
export async function runJob(req: JobRequest, out: Sink, err: Sink, ui: Ui, before: Before, started: (job: Job) => void): Promise<number> {
  const env = process.env;
  const tPlan = msSinceStart();
  const resolved = resolveHosts(req, { readFile: (p) => fs.readFileSync(p, 'utf8'), env });
  const { hosts, source } = resolved;
  // Unique, not secret (ranks read it; no access depends on it): Math.random spares every start loading
  // node:crypto, about 3 ms.
  const kvsname = `kvs_${process.pid}_${Math.floor(Math.random() * 0x100000000).toString(16).padStart(8, '0')}`;
  const placed = place({ request: req, hosts, hostSource: source, kvsname, defaultNp: defaultRankCount(hosts, req.ppn) });
  const plan = { ...placed, universeSize: universeSize(req.usize, hosts, req.ppn, source.kind === 'default', placed.size, os.availableParallelism()) };
  checkSlots(plan.size, resolved, req.oversubscribe === true);
  if (req.verbose) err.write(Buffer.from(`tsmpiexec: ${describeHosts(resolved)}\n`));
  if (req.noEffect && req.noEffect.length > 0) {
    const names = [...new Set(req.noEffect)];
    err.write(Buffer.from(ui.stderr.notice(`tsmpiexec: ${names.join(', ')}: accepted from other launchers' job scripts; ${names.length === 1 ? 'it has' : 'they have'} no effect here`) + '\n'));
  }
  const timing = { startupMs: before.startupMs, parseMs: before.parseMs, planMs: msSinceStart() - tPlan, hosts: plan.proxies.length, ranks: plan.size };
  if (req.dryRun) {
    const mpi = await dryRunMpi(req, env);
    await writeAll(out, req.json ? placementJson(plan, await dryRunBindings(req, plan, env), mpi) : placementTable(plan, ui.stdout.bold, mpi));
    if (req.timing) err.write(Buffer.from((await import('../report/timing.js')).timingText(timing)));
    return EXIT.OK;
  }
  const names = localNames();
  const remote = plan.proxies.filter((p) => !isLocalHost(p.host, names));
  const launcher = req.launcher ?? defaultLauncher(resolved, env, remote.length > 0);
  let how: RemoteLaunch = { kind: 'ssh' };
  const launcherEnv = { ...env };
  if (launcher === 'slurm') {
    const jobId = env.SLURM_JOB_ID || env.SLURM_JOBID;
    if (!jobId) {
      throw new TsmpiError(ERROR_CODES.ALLOCATION, '-launcher slurm starts proxies inside a Slurm allocation, and SLURM_JOB_ID is not set', {
        culprit: '-launcher slurm',
        hint: 'run tsmpiexec inside sbatch or salloc, or use -launcher ssh',
        exitStatus: EXIT.LAUNCH_FAILED,
      });
    }
    how = resolved.allocation ? { kind: 'slurm', jobId, allocation: resolved.allocation } : { kind: 'slurm', jobId };
    // srun keeps the full environment (launcherEnv); ranks must not see the task and step variables of the
    // srun or batch step that started us (SLURM_PROCID=0 in every rank, the outer srun's address, ...)
    for (const k of Object.keys(env)) if (isSlurmTaskVar(k)) delete env[k];
  }
  // The spinner (a TTY stderr, several hosts) follows each proxy's start; it is cleared before anything
  // else is written to our stdout or stderr and stopped by the first rank output.
  const progress = wantProgress(err.isTTY, plan.proxies.length, env) ? startProgress({ stream: process.stderr, hosts: plan.proxies.length, colour: ui.stderr.enabled }) : NO_PROGRESS;
  const jobOut = progress.sink(out);
  const jobErr = progress.sink(err);
  const traffic = { written: 0, read: 0 };
  const makeProxy = progress.watch(launcher === 'fork' ? localProxy : remoteProxyFactory(req, names, launcherEnv, how, plan.proxies.map((p) => p.host), traffic));
  // -l labels are coloured only where they reach a coloured stream (never in -outfile-pattern files)
  const outLabel = req.outfilePattern === undefined && ui.stdout.enabled ? ui.stdout.label : undefined;
  const errLabel = req.errfilePattern === undefined && ui.stderr.enabled ? ui.stderr.label : undefined;
  const label = outLabel || errLabel ? (rank: number, stream: 'stdout' | 'stderr'): string => (stream === 'stdout' ? outLabel : errLabel)?.(rank) ?? `[${rank}] ` : undefined;
  if (req.verbose) {
    err.write(Buffer.from(`tsmpiexec: ${plan.size} ranks on ${plan.proxies.length} host(s) [${plan.proxies.map((p) => `${p.host}:${p.ranks.length}`).join(' ')}], launcher ${launcher}, PMI over ${req.pmiTransport === 'fd' ? 'PMI_FD' : `PMI_PORT (${req.pmiTransport})`}, mapping ${plan.processMapping || '(none)'}\n`));
  }
  const job_: Job = new Job(req, plan, {
    makeProxy,
    env,
    cwd: process.cwd(),
    stdout: jobOut,
    stderr: jobErr,
    label,
    notice: (line) => jobErr.write(Buffer.from(ui.stderr.notice(`tsmpiexec: ${line}`) + '\n')),
    openFile: (path) => fileSink(path, (e) => job_.outputFailed(path, (e as NodeJS.ErrnoException).code ?? e.message)),
    stdinSource: () => fdSource(0),
  });
  started(job_);
  const onSignal = (sig: NodeJS.Signals): void => job_.signal(sig);
  for (const s of FORWARDED) process.on(s, onSignal);
  try {
    const outcome = await job_.run();
    progress.stop();
    const status = exitStatus(outcome.causes);
    const lines = outcome.causes.length > 0 ? failureSummary(outcome, true) : [];
    for (const l of lines) err.write(Buffer.from(ui.stderr.error(`tsmpiexec: ${l}`) + '\n'));
    if (req.printAllExitcodes) {
      for (const r of outcome.ranks) {
        const who = r.spawn ? `rank ${r.spawn.rank} of spawn ${r.spawn.group}` : `rank ${r.rank}`;
        err.write(Buffer.from(`tsmpiexec: ${who} on ${r.host}: ${describeOutcome(r.outcome)}\n`));
      }
    }
    if (req.report) err.write(Buffer.from(usageTable(outcome)));
    if (req.reportJson !== undefined) writeReport(err, ui, req.reportJson, 'usage report', usageJson(outcome, { argv: ['tsmpiexec', ...before.argv], exitStatus: status, endedAtMs: Date.now() }));
    if (req.reportHtml !== undefined) {
      const { renderHtml } = await import('../report/html.js');
      const html = renderHtml({ outcome, plan, argv: ['tsmpiexec', ...before.argv], exitStatus: status, generatedAt: new Date().toISOString(), version: version() });
      writeReport(err, ui, req.reportHtml, 'HTML report', html);
    }
    if (req.timing) err.write(Buffer.from((await import('../report/timing.js')).timingText({ ...timing, phases: outcome.phases ?? {} })));
    if ((req.timing || req.verbose) && remote.length > 0 && launcher !== 'fork') {
      err.write(Buffer.from(`tsmpiexec: control channels: ${traffic.written} bytes written to the remote proxies, ${traffic.read} bytes read from them\n`));
    }
    return status;
  } finally {
    progress.stop();
    for (const s of FORWARDED) process.off(s, onSignal);
  }
}

