// The start-up spinner ("starting proxies 3/16") on a TTY stderr while proxies come up on several hosts.
// Off the TTY there is no spinner at all, and ora is never imported (start-up time is measured).
// Races, written down here: ora loads asynchronously, so stop() may come first (nothing is ever drawn);
// a notice written while the spinner is up clears it and the next frame redraws it below the notice;
// the first byte of rank output stops it for good. It waits `delayMs` before drawing, so a fast start
// does not flash a spinner.
import type { Ora } from 'ora';
import type { Sink } from '../io/sink.js';
import { importOra } from '../util/external.js';

/** What ora needs of the stream (a tty.WriteStream). */
export interface SpinnerStream {
  isTTY?: boolean;
  columns?: number;
  write(s: string): boolean;
  cursorTo(x: number, cb?: () => void): boolean;
  moveCursor(dx: number, dy: number, cb?: () => void): boolean;
  clearLine(dir: -1 | 0 | 1, cb?: () => void): boolean;
}

/** The part of a proxy's spec the spinner follows (run/job.ts ProxySpec). */
export interface WatchedSpec {
  index: number;
  launches: readonly unknown[];
  events: {
    started(rank: number, pid: number): void;
    launchFailed(message: string): void;
    exited(rank: number, outcome: { kind: string }): void;
    output(rank: number, stream: 'stdout' | 'stderr', data: Buffer): boolean;
  };
}

export interface Progress {
  /** Wraps the proxy factory: counts each host's started ranks; rank output stops the spinner. */
  watch<S extends WatchedSpec, H>(make: (spec: S) => H): (spec: S) => H;
  /** A sink that clears the spinner line before each write (the spinner redraws below it). */
  sink(s: Sink): Sink;
  /** Clears the spinner for good. Idempotent. */
  stop(): void;
}

export const NO_PROGRESS: Progress = {
  watch: (make) => make,
  sink: (s) => s,
  stop: () => undefined,
};

export interface SpinnerOptions {
  stream: SpinnerStream;
  /** hosts (proxies) in the job */
  hosts: number;
  /** colour the spinner frame (false under NO_COLOR: see style.ts) */
  colour: boolean;
  delayMs?: number;
  /** for tests: how ora is obtained */
  load?: () => Promise<(o: object) => Ora>;
}

export function spinnerText(up: number, total: number): string {
  return `starting proxies ${up}/${total}`;
}

/**
 * ora divides by the stream's width: a pseudo-terminal nobody sized (`script` under a pipe, some CI
 * runners) reports 0 columns, and ora 8 then clears Infinity lines, forever. Give it 80 instead.
 */
function columnsGuard(s: SpinnerStream): SpinnerStream {
  return {
    isTTY: true,
    get columns() {
      return s.columns || 80;
    },
    write: (x) => s.write(x),
    cursorTo: (x, cb) => s.cursorTo(x, cb),
    moveCursor: (dx, dy, cb) => s.moveCursor(dx, dy, cb),
    clearLine: (dir, cb) => s.clearLine(dir, cb),
  };
}

/** The spinner for a TTY stderr; callers decide that it is one (see wantProgress). */
export function startProgress(o: SpinnerOptions): Progress {
  let up = 0;
  let stopped = false;
  let spinner: Ora | undefined;
  const startedOf = new Map<number, number>();
  const load = o.load ?? (async () => (await importOra()).default as (opts: object) => Ora);
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    clearTimeout(timer);
    spinner?.stop();
    spinner = undefined;
  };
  const show = (): void => {
    void load().then((ora) => {
      if (stopped) return;
      spinner = ora({
        stream: columnsGuard(o.stream),
        text: spinnerText(up, o.hosts),
        color: o.colour ? 'cyan' : false,
        isEnabled: true,
        // no raw mode on stdin: a TTY stdin belongs to rank 0
        discardStdin: false,
        // no signal-exit hooks: tsmpiexec's own signal handling stays as it is
        hideCursor: false,
      });
      spinner.start();
    }, stop);
  };
  const timer = setTimeout(show, o.delayMs ?? 150);
  const hostUp = (): void => {
    up++;
    if (up >= o.hosts) stop();
    else if (spinner) spinner.text = spinnerText(up, o.hosts);
  };
  return {
    watch: (make) => (spec) => {
      const ev = spec.events;
      let done = false;
      // a host is up when each of its ranks started, or could not be started
      const accounted = (): void => {
        const n = (startedOf.get(spec.index) ?? 0) + 1;
        startedOf.set(spec.index, n);
        if (n === spec.launches.length && !done) {
          done = true;
          hostUp();
        }
      };
      const events = {
        ...ev,
        started: (rank: number, pid: number) => {
          ev.started(rank, pid);
          accounted();
        },
        exited: (rank: number, outcome: { kind: string }) => {
          ev.exited(rank, outcome);
          if (outcome.kind === 'not-started') accounted();
        },
        launchFailed: (message: string) => {
          stop();
          ev.launchFailed(message);
        },
        output: (rank: number, stream: 'stdout' | 'stderr', data: Buffer) => {
          stop();
          return ev.output(rank, stream, data);
        },
      };
      return make({ ...spec, events });
    },
    sink: (s) => ({
      write: (data: Buffer) => {
        spinner?.clear();
        return s.write(data);
      },
      onDrain: (fn) => s.onDrain(fn),
      finish: () => s.finish(),
      get failed() {
        return s.failed;
      },
      get isTTY() {
        return s.isTTY;
      },
    }),
    stop,
  };
}

/** A spinner only for a TTY stderr and a job on more than one host. */
export function wantProgress(stderrIsTTY: boolean, hosts: number, env: Record<string, string | undefined>): boolean {
  return stderrIsTTY && hosts > 1 && env.TERM !== 'dumb';
}
