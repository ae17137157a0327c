// The "pod" launcher: runs a proxy on THIS host, inside user+mount+PID namespaces (src/isolate/pod-argv.ts).
// Unprivileged users get their private /tmp and escape-proof containment this way, because such namespaces
// cannot be entered later: every rank must be spawned from inside, by a proxy living there.
import { spawnWithTail, type Launcher, type LaunchedProxy } from './launcher.js';

export class PodLauncher implements Launcher {
  readonly name = 'pod';
  constructor(private readonly prefix: readonly string[]) {}
  start(_host: string, proxyArgv: string[], env: Record<string, string | undefined>): LaunchedProxy {
    const argv = [...this.prefix, ...proxyArgv];
    return spawnWithTail(argv[0] as string, argv.slice(1), env);
  }
}
