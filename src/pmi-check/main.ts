// `tsmpiexec pmi-check`: a PMI client command for checking a launcher's PMI service from inside a job, like
// `flux pmi`. Run it as the ranks of a job: `tsmpiexec -n 8 tsmpiexec pmi-check`. Like proxy/main.ts this is an
// entry point and may touch process.* (environment, stdout, stderr); the work is in check.ts.
import os from 'node:os';
import { binPath } from '../util/package-root.js';
import { performance } from 'node:perf_hooks';
import { CheckFailure, NoPmiError, formatReport, formatSummary, runCheck, transportOf, type CheckOptions } from './check.js';

export const PMI_CHECK_HELP = `Usage: tsmpiexec pmi-check [--keys N] [--spawn N] [--json] [--timeout SECONDS]

Check the PMI service from inside a job: run it as every rank of one,
  tsmpiexec -n 8 tsmpiexec pmi-check
  tsmpiexec -n 4 --pmi-transport tcp tsmpiexec pmi-check --keys 16

Each rank connects the way an MPICH rank does (PMI_FD, else PMI_PORT and PMI_ID,
host:port or unix:///path), runs PMI-1 init, a barrier, an all-to-all exchange
(puts N keys, barrier, reads and verifies every rank's keys), hands its timings
to rank 0, and finalizes. Each rank prints one line with its timings; rank 0
then prints a min/median/max summary over all ranks.

Options:
  --keys N           keys each rank puts (default 4)
  --spawn N          rank 0 then spawns N processes (PMI-1 spawn) that run the
                     same check as a group of their own and verify the parent's
                     preput; each prints its line, "spawned by <kvsname>"
  --json             one JSON object per line instead of text
  --timeout SECONDS  give up on a PMI reply after this long (default 60)
  -h, --help         this text

Exit status: 0 if every step passed on this rank; 1 if a step failed (the rank
then asks the launcher to abort the job, so no rank waits forever); 2 for a
usage error or when no PMI server is set in the environment.
`;

interface Parsed {
  opts: CheckOptions;
  json: boolean;
}

function parse(argv: string[]): Parsed | { help: true } | { error: string } {
  const opts: CheckOptions = { keys: 4, timeoutMs: 60_000 };
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const eq = a.indexOf('=');
    const name = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    const inline = a.startsWith('--') && eq > 0 ? a.slice(eq + 1) : undefined;
    const value = (): string | undefined => (inline !== undefined ? inline : argv[++i]);
    switch (name) {
      case '-h':
      case '--help':
        return { help: true };
      case '--json':
        if (inline !== undefined) return { error: '--json takes no value' };
        json = true;
        break;
      case '--keys': {
        const v = value();
        if (v === undefined || !/^\d{1,6}$/.test(v) || Number(v) > 100_000) return { error: `--keys needs a count from 0 to 100000, got ${v ?? 'nothing'}` };
        opts.keys = Number(v);
        break;
      }
      case '--spawn': {
        const v = value();
        if (v === undefined || !/^\d{1,4}$/.test(v) || Number(v) > 1024) return { error: `--spawn needs a count from 0 to 1024, got ${v ?? 'nothing'}` };
        opts.spawn = Number(v);
        opts.spawnArgv = [process.execPath, binPath()];
        break;
      }
      case '--timeout': {
        const v = value();
        const n = Number(v);
        if (v === undefined || !/^\d+(\.\d+)?$/.test(v) || n <= 0 || n > 86_400) return { error: `--timeout needs seconds (0 < s <= 86400), got ${v ?? 'nothing'}` };
        opts.timeoutMs = Math.round(n * 1000);
        break;
      }
      default:
        return { error: `unknown argument ${JSON.stringify(a)}` };
    }
  }
  return { opts, json };
}

function write(stream: NodeJS.WriteStream, text: string): Promise<void> {
  return new Promise((resolve) => stream.write(text, () => resolve()));
}

export async function pmiCheckMain(argv: string[]): Promise<number> {
  const p = parse(argv);
  if ('help' in p) {
    await write(process.stdout, PMI_CHECK_HELP);
    return 0;
  }
  if ('error' in p) {
    await write(process.stderr, `tsmpiexec pmi-check: ${p.error}\n(see tsmpiexec pmi-check --help)\n`);
    return 2;
  }
  const env = process.env;
  const host = os.hostname();
  const who = `rank ${env.PMI_RANK ?? env.PMI_ID ?? '?'}`;
  try {
    const { report, summary } = await runCheck(env, p.opts, () => performance.now());
    if (p.json) {
      await write(process.stdout, JSON.stringify({ ok: true, ...report, host, pid: process.pid }) + '\n');
      if (summary) await write(process.stdout, JSON.stringify({ summary: { ok: true, ...summary } }) + '\n');
    } else {
      await write(process.stdout, formatReport(report, host, process.pid) + '\n');
      if (summary) await write(process.stdout, formatSummary(summary) + '\n');
    }
    return 0;
  } catch (e) {
    if (e instanceof NoPmiError) {
      await write(process.stderr, `tsmpiexec pmi-check: ${e.message}: run it as the ranks of a job, e.g. tsmpiexec -n 4 tsmpiexec pmi-check\n`);
      return 2;
    }
    const phase = e instanceof CheckFailure ? e.phase : 'connect';
    const message = e instanceof Error ? e.message : String(e);
    if (p.json) {
      await write(process.stdout, JSON.stringify({ ok: false, rank: env.PMI_RANK ?? env.PMI_ID, transport: transportOf(env), host, pid: process.pid, phase, error: message }) + '\n');
    }
    await write(process.stderr, `tsmpiexec pmi-check: ${who} on ${host}: FAILED in ${phase}: ${message}\n`);
    // Ask the launcher to end the job, so that ranks waiting in a barrier for us do not sit there until their
    // own timeout. Best effort, bounded.
    const client = e instanceof CheckFailure ? e.client : undefined;
    if (client) {
      await Promise.race([client.abort(1, `pmi-check_failed_in_${phase}`).catch(() => undefined), new Promise((r) => setTimeout(r, 1000).unref())]);
      client.close();
    }
    return 1;
  }
}
