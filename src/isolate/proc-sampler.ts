// Approximate per-rank CPU time when no cgroup counts it: sample /proc for processes carrying the job's
// marker and keep each one's highest utime/stime. Misses processes that live less than one interval.
import { listPids, readMarker, readProc } from './proc-scan.js';
import type { IsolationDeps } from './types.js';

const CLOCK_TICKS = 100; // USER_HZ: 100 on every Linux ABI Node supports

export class ProcSampler {
  private readonly seen = new Map<number, { rank: number | undefined; user: number; sys: number }>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly deps: IsolationDeps,
    private readonly jobId: string,
    private readonly intervalMs = 500,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  sample(): void {
    for (const pid of listPids(this.deps)) {
      let entry = this.seen.get(pid);
      if (entry === undefined) {
        const m = readMarker(this.deps, pid);
        if (m.job !== this.jobId) continue;
        entry = { rank: m.rank, user: 0, sys: 0 };
      }
      const p = readProc(this.deps, pid);
      if (p === undefined) continue;
      this.seen.set(pid, { rank: entry.rank, user: Math.max(entry.user, p.userTicks), sys: Math.max(entry.sys, p.sysTicks) });
    }
  }

  /** CPU seconds of every sampled process of `rank` (all ranks when undefined). */
  cpu(rank?: number): { user: number; sys: number } {
    let user = 0;
    let sys = 0;
    for (const s of this.seen.values()) {
      if (rank !== undefined && s.rank !== rank) continue;
      user += s.user;
      sys += s.sys;
    }
    return { user: user / CLOCK_TICKS, sys: sys / CLOCK_TICKS };
  }
}
