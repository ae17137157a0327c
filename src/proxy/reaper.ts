// A last line of defence for a proxy that dies abruptly (SIGKILL, OOM): a tiny detached shell holds the read
// end of a pipe and learns the process group of every rank; when the pipe closes without a goodbye (the proxy
// is gone), it SIGKILLs those groups, so no rank outlives its proxy. Ranks run in their own process groups
// (see rank-process.ts), which is why the kernel would not do this for us. Escapees that call setsid are the
// cgroup's job (src/isolate), not this one's.
//
// Groups are announced in batches (flush()): each write wakes the shell, and on a busy machine every wake-up
// can cost the launcher its CPU (writing 256 pids one by one cost 80-110 ms of spawn time with isolation on a
// 2-CPU host). The window in which a freshly spawned group is not yet known is one batch of spawns.
import { spawn, type ChildProcess } from 'node:child_process';

const SCRIPT = `trap '' INT TERM HUP PIPE QUIT
g=
while read -r p; do
  [ "$p" = exit ] && exit 0
  g="$g $p"
done
for p in $g; do kill -s KILL -- "-$p" 2>/dev/null; done`;

export class GroupReaper {
  private child: ChildProcess | undefined;
  private started = false;
  private pending: number[] = [];

  /**
   * The shell starts at the first flush(), after the first ranks: its fork (about a millisecond of Node's time)
   * then overlaps their start-up instead of delaying it. Those ranks were not covered before the first flush
   * either way.
   */
  private start(): ChildProcess | undefined {
    if (this.started) return this.child;
    this.started = true;
    try {
      this.child = spawn('/bin/sh', ['-c', SCRIPT], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
      this.child.on('error', () => undefined);
      this.child.stdin?.on('error', () => undefined);
      this.child.unref();
    } catch {
      this.child = undefined;
    }
    return this.child;
  }

  /** Remember a group; it reaches the shell at the next flush(). */
  add(pgid: number): void {
    this.pending.push(pgid);
  }

  flush(): void {
    if (this.pending.length === 0) return;
    const w = this.start()?.stdin;
    if (w && !w.destroyed) w.write(`${this.pending.join('\n')}\n`);
    this.pending = [];
  }

  /** Normal end: the proxy killed its groups itself; the reaper leaves without touching anything. */
  close(): void {
    this.pending = [];
    const w = this.child?.stdin;
    if (w && !w.destroyed) w.end('exit\n');
  }
}
