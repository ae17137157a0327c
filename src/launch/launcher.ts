// One interface for every way of starting a remote proxy (Hydra's bootstrap server idea): a launcher turns
// "run this proxy command on host H" into a local child process whose stdin/stdout carry the control channel.
import { spawn, type ChildProcess } from 'node:child_process';

export interface LaunchedProxy {
  child: ChildProcess;
  /** The last lines the launcher (ssh) wrote on stderr, for error messages. */
  stderrTail(): string[];
}

export interface Launcher {
  readonly name: string;
  start(host: string, proxyArgv: string[], env: Record<string, string | undefined>): LaunchedProxy;
}

/** Quote one word for a POSIX shell (the remote side of ssh runs the command through the user's shell). */
export function shQuote(w: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}

export function spawnWithTail(file: string, args: string[], env: Record<string, string | undefined>): LaunchedProxy {
  const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], env: env as NodeJS.ProcessEnv });
  const tail: string[] = [];
  let partial = '';
  child.stderr?.on('data', (d: Buffer) => {
    const text = partial + d.toString();
    const lines = text.split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) {
      if (l.trim() === '') continue;
      tail.push(l.replace(/\r$/, ''));
      if (tail.length > 20) tail.shift();
    }
  });
  return {
    child,
    stderrTail: () => (partial.trim() ? [...tail, partial] : tail),
  };
}
