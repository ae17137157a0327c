// The launcher's entry point: the only place (with proxy/main.ts) that touches process.*: argv, env,
// signals, fds 0-2 and the exit code. Everything below takes these as parameters. It imports only what every
// invocation needs; the job machinery (run/run-job.ts), help and the proxy are loaded when used.
import fs from 'node:fs';
import os from 'node:os';
import { parseArgs } from './cli/parse.js';
import { formatError, isTsmpiError } from './util/errors.js';
import { EXIT } from './run/exit-status.js';
import { packageVersion } from './util/package-root.js';
import { fdSink, type Sink } from './io/sink.js';
import { growPipe } from './io/pipe-size.js';
import { colourWanted, loadPaints, paintError } from './report/style.js';
import type { Job } from './run/job.js';
import type { Ui } from './run/run-job.js';
import { msSinceStart } from './util/clock.js';

// bin/tsmpiexec.js hands in its own import() for chalk and ora (see util/external.ts).
export { setExternalImporter } from './util/external.js';
export { setCgroupHeadStart } from './isolate/head-start.js';

/** The running job, for the stdout-closed callback of the sink created before it. */
let currentJob: Job | undefined;

function version(): string {
  return packageVersion();
}

async function writeAll(sink: Sink, text: string): Promise<void> {
  sink.write(Buffer.from(text));
  await sink.finish();
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
  const startupMs = msSinceStart();
  // Our reader going away (EPIPE) ends the job as a SIGPIPE would; any other write error (ENOSPC on a redirected
  // file, EIO) is lost output: status 74 and a line, never a silent success.
  const outputError = (stream: string, e: Error): void => {
    const code = (e as NodeJS.ErrnoException).code;
    if (stream === 'stdout' && (code === 'EPIPE' || code === 'ECONNRESET')) currentJob?.stdoutClosed();
    else if (code !== 'EPIPE') currentJob?.outputFailed(stream, code ?? e.message);
  };
  const out = fdSink(1, (e) => outputError('stdout', e), growPipe);
  const err = fdSink(2, (e) => outputError('stderr', e), growPipe);
  let ui: Ui | undefined;
  const paints = async (): Promise<Ui> =>
    (ui ??= await loadPaints({ stdout: colourWanted(out.isTTY, process.env), stderr: colourWanted(err.isTTY, process.env) }));
  try {
    const res = parseArgs(argv, process.env, (p) => fs.readFileSync(p, 'utf8'));
    const parseMs = msSinceStart() - startupMs;
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
    const { runJob } = await import('./run/run-job.js');
    const code = await runJob(res.request, out, err, await paints(), { argv, startupMs, parseMs }, (job) => (currentJob = job));
    await Promise.all([out.finish(), err.finish()]);
    return code;
  } catch (e) {
    if (isTsmpiError(e)) {
      err.write(Buffer.from(paintError((await paints()).stderr, formatError(e)) + '\n'));
      await Promise.all([out.finish(), err.finish()]);
      return e.exitStatus;
    }
    const stack = e instanceof Error ? (e.stack ?? e.message) : String(e);
    const head = (await paints().catch(() => undefined))?.stderr.error('tsmpiexec: internal error:') ?? 'tsmpiexec: internal error:';
    err.write(Buffer.from(`${head} ${stack}\ntsmpiexec: this is a bug in tsmpiexec ${version()} on ${os.platform()}; please report it with the command line you ran\n`));
    await Promise.all([out.finish(), err.finish()]);
    return EXIT.INTERNAL;
  }
}
