// A last line of defence for a proxy that dies abruptly (SIGKILL, OOM): a tiny detached shell holds the read
// end of a pipe and learns the process group of every rank; when the pipe closes without a goodbye (the proxy
// is gone), it SIGKILLs those groups, so no rank outlives its proxy. Ranks run in their own process groups
// (see rank-process.ts), which is why the kernel would not do this for us. Escapees that call setsid are the
// cgroup's job (src/isolate), not this one's.
import { spawn, type ChildProcess } from 'node:child_process';

const SCRIPT = `trap '' INT TERM HUP PIPE QUIT
g=
while read -r p; do
  [ "$p" = exit ] && exit 0
  g="$g $p"
done
for p in $g; do kill -s KILL -- "-$p" 2>/dev/null; done`;

export class GroupReaper {
  private readonly child: ChildProcess | undefined;

  constructor() {
    try {
      this.child = spawn('/bin/sh', ['-c', SCRIPT], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
      this.child.on('error', () => undefined);
      this.child.stdin?.on('error', () => undefined);
      this.child.unref();
    } catch {
      this.child = undefined;
    }
  }

  add(pgid: number): void {
    this.child?.stdin?.write(`${pgid}\n`);
  }

  /** Normal end: the proxy killed its groups itself; the reaper leaves without touching anything. */
  close(): void {
    const w = this.child?.stdin;
    if (w && !w.destroyed) w.end('exit\n');
  }
}
