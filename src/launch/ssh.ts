// The ssh (or rsh) launcher: `ssh -T -x -o BatchMode=yes HOST 'exec NODE TSMPIEXEC proxy'`. BatchMode means
// no password prompt can ever hang a job; -T no pty, so the session's stdin/stdout are a clean binary channel.
import path from 'node:path';
import { shQuote, spawnWithTail, type Launcher, type LaunchedProxy } from './launcher.js';

export function sshArgv(exec: readonly string[] | undefined, host: string, proxyArgv: readonly string[]): string[] {
  const base = exec && exec.length > 0 ? [...exec] : ['ssh'];
  const prog = path.basename(base[0] ?? 'ssh');
  const opts = prog === 'ssh' ? ['-T', '-x', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', '-o', 'LogLevel=ERROR'] : [];
  return [...base, ...opts, host, `exec ${proxyArgv.map(shQuote).join(' ')}`];
}

export class SshLauncher implements Launcher {
  readonly name = 'ssh';
  constructor(private readonly exec: readonly string[] | undefined) {}
  start(host: string, proxyArgv: string[], env: Record<string, string | undefined>): LaunchedProxy {
    const argv = sshArgv(this.exec, host, proxyArgv);
    return spawnWithTail(argv[0] as string, argv.slice(1), env);
  }
}
