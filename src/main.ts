// The launcher's entry point: the only place (with proxy/main.ts) that touches process.*: argv, env,
// signals, fds 0-2 and the exit code. Everything below takes these as parameters.
import fs from 'node:fs';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { parseArgs } from './cli/parse.js';
import { formatError, isTsmpiError, TsmpiError, ERROR_CODES } from './util/errors.js';
import { EXIT, exitStatus } from './run/exit-status.js';
import { packageVersion } from './util/package-root.js';
import { resolveHosts, defaultRankCount, checkSlots, describeHosts, defaultLauncher } from './hosts/resolve.js';
import { isSlurmTaskVar } from './launch/slurm.js';
import { isLocalHost, localNames } from './hosts/local.js';
import { place } from './placement/place.js';
import { fdSink, fileSink, type Sink } from './io/sink.js';
import { fdSource } from './io/stdin.js';
import { Job, localProxy } from './run/job.js';
import { remoteProxyFactory, type RemoteLaunch } from './run/proxies.js';
import { failureSummary, placementJson, placementTable } from './report/summary.js';
import { usageJson, usageTable } from './report/usage.js';
import type { JobRequest } from './model/types.js';

/** The running job, for the stdout-closed callback of the sink created before it. */
let currentJob: Job | undefined;

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

function version(): string {
  return packageVersion();
}

async function writeAll(sink: Sink, text: string): Promise<void> {
  sink.write(Buffer.from(text));
  await sink.finish();
}

async function runJob(req: JobRequest, out: Sink, err: Sink): Promise<number> {
  const env = process.env;
  const resolved = resolveHosts(req, { readFile: (p) => fs.readFileSync(p, 'utf8'), env });
  const { hosts, source } = resolved;
  const kvsname = `kvs_${process.pid}_${randomBytes(4).toString('hex')}`;
  const plan = place({ request: req, hosts, hostSource: source, kvsname, defaultNp: defaultRankCount(hosts, req.ppn) });
  checkSlots(plan.size, resolved, req.oversubscribe === true);
  if (req.verbose) err.write(Buffer.from(`tsmpiexec: ${describeHosts(resolved)}\n`));
  if (req.dryRun) {
    await writeAll(out, req.json ? placementJson(plan) : placementTable(plan));
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
  const makeProxy = launcher === 'fork' ? localProxy : remoteProxyFactory(req, names, launcherEnv, how);
  if (req.verbose) {
    err.write(Buffer.from(`tsmpiexec: ${plan.size} ranks on ${plan.proxies.length} host(s) [${plan.proxies.map((p) => `${p.host}:${p.ranks.length}`).join(' ')}], launcher ${launcher}, PMI over ${req.pmiTransport === 'fd' ? 'PMI_FD' : `PMI_PORT (${req.pmiTransport})`}, mapping ${plan.processMapping || '(none)'}\n`));
  }
  const job_: Job = new Job(req, plan, {
    makeProxy,
    env,
    cwd: process.cwd(),
    stdout: out,
    stderr: err,
    openFile: (path) => fileSink(path, (e) => job_.outputFailed(path, (e as NodeJS.ErrnoException).code ?? e.message)),
    stdinSource: () => fdSource(0),
  });
  currentJob = job_;
  const onSignal = (sig: NodeJS.Signals): void => job_.signal(sig);
  for (const s of FORWARDED) process.on(s, onSignal);
  try {
    const outcome = await job_.run();
    const lines = outcome.causes.length > 0 ? failureSummary(outcome) : [];
    for (const l of lines) err.write(Buffer.from(`tsmpiexec: ${l}\n`));
    if (req.report) err.write(Buffer.from(usageTable(outcome)));
    if (req.reportJson !== undefined) {
      try {
        fs.writeFileSync(req.reportJson, usageJson(outcome), { mode: 0o600 });
      } catch (e) {
        err.write(Buffer.from(`tsmpiexec: cannot write the usage report (${req.reportJson}): ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}\n`));
      }
    }
    return exitStatus(outcome.causes);
  } finally {
    for (const s of FORWARDED) process.off(s, onSignal);
  }
}

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'proxy') {
    const { proxyMain } = await import('./proxy/main.js');
    return proxyMain();
  }
  if (argv[0] === 'pmi-check') {
    const { pmiCheckMain } = await import('./pmi-check/main.js');
    return pmiCheckMain(argv.slice(1));
  }
  const out = fdSink(1, () => currentJob?.stdoutClosed());
  const err = fdSink(2, () => undefined);
  try {
    const res = parseArgs(argv, process.env, (p) => fs.readFileSync(p, 'utf8'));
    if (res.kind === 'version') {
      await writeAll(out, `tsmpiexec ${version()} (node ${process.version})\n`);
      return EXIT.OK;
    }
    if (res.kind === 'help') {
      const { renderHelp, renderOptionHelp } = await import('./cli/help.js');
      const cols = process.stdout.isTTY ? process.stdout.columns : 80;
      await writeAll(out, res.topic ? renderOptionHelp(res.topic) : renderHelp({ width: Math.min(cols || 80, 100) }));
      return EXIT.OK;
    }
    const code = await runJob(res.request, out, err);
    await Promise.all([out.finish(), err.finish()]);
    return code;
  } catch (e) {
    if (isTsmpiError(e)) {
      err.write(Buffer.from(formatError(e) + '\n'));
      await Promise.all([out.finish(), err.finish()]);
      return e.exitStatus;
    }
    const stack = e instanceof Error ? (e.stack ?? e.message) : String(e);
    err.write(Buffer.from(`tsmpiexec: internal error: ${stack}\ntsmpiexec: this is a bug in tsmpiexec ${version()} on ${os.platform()}; please report it with the command line you ran\n`));
    await Promise.all([out.finish(), err.finish()]);
    return EXIT.INTERNAL;
  }
}
