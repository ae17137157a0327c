// Parses the kernel's cgroup counter files into numbers (pure); a missing or garbled field is undefined, never 0.

/** "key value" lines (cpu.stat, memory.events, memory.oom_control, pids.events, cpuacct.stat). */
export function parseFlatKeyed(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k === undefined || v === undefined) continue;
    const n = Number(v);
    if (Number.isFinite(n)) out.set(k, n);
  }
  return out;
}

/** A file holding one integer (memory.peak, pids.peak, cpuacct.usage_user). "max" → undefined. */
export function parseSingle(text: string): number | undefined {
  const t = text.trim();
  if (!/^\d+$/.test(t)) return undefined;
  return Number(t);
}

/** cpu.stat (v2): user/system seconds from user_usec/system_usec. */
export function cpuFromV2(text: string): { user: number; sys: number } | undefined {
  const m = parseFlatKeyed(text);
  const u = m.get('user_usec');
  const s = m.get('system_usec');
  if (u === undefined || s === undefined) return undefined;
  return { user: u / 1e6, sys: s / 1e6 };
}

/** v1 cpuacct: nanoseconds from cpuacct.usage_user/_sys when present, else cpuacct.stat ticks. */
export function cpuFromV1(files: { usageUser?: string; usageSys?: string; stat?: string }, clockTicks = 100): { user: number; sys: number } | undefined {
  if (files.usageUser !== undefined && files.usageSys !== undefined) {
    const u = parseSingle(files.usageUser);
    const s = parseSingle(files.usageSys);
    if (u !== undefined && s !== undefined) return { user: u / 1e9, sys: s / 1e9 };
  }
  if (files.stat !== undefined) {
    const m = parseFlatKeyed(files.stat);
    const u = m.get('user');
    const s = m.get('system');
    if (u !== undefined && s !== undefined) return { user: u / clockTicks, sys: s / clockTicks };
  }
  return undefined;
}

/** v2 io.stat: sum of rbytes/wbytes over devices. An empty file means "no I/O yet" (0 is real here). */
export function ioFromV2(text: string): { read: number; write: number } {
  let read = 0;
  let write = 0;
  for (const line of text.split('\n')) {
    for (const field of line.trim().split(/\s+/).slice(1)) {
      const [k, v] = field.split('=');
      if (k === 'rbytes') read += Number(v) || 0;
      if (k === 'wbytes') write += Number(v) || 0;
    }
  }
  return { read, write };
}

/** v1 blkio.throttle.io_service_bytes(_recursive): sum of per-device Read/Write lines. */
export function ioFromV1(text: string): { read: number; write: number } {
  let read = 0;
  let write = 0;
  for (const line of text.split('\n')) {
    const parts = line.trim().split(/\s+/);
    if (parts.length !== 3 || !/^\d+:\d+$/.test(parts[0] ?? '')) continue;
    if (parts[1] === 'Read') read += Number(parts[2]) || 0;
    if (parts[1] === 'Write') write += Number(parts[2]) || 0;
  }
  return { read, write };
}

/** OOM kills from memory.events (v2: oom_kill, oom_group_kill) or memory.oom_control (v1: oom_kill). */
export function oomKills(text: string): number {
  const m = parseFlatKeyed(text);
  return (m.get('oom_kill') ?? 0) + (m.get('oom_group_kill') ?? 0);
}

/** cgroup.events (v2): is any process left in the subtree? */
export function isPopulated(eventsText: string): boolean {
  return parseFlatKeyed(eventsText).get('populated') === 1;
}

/** /proc/PID/stat: state, ppid and CPU ticks; the comm field may hold spaces and parentheses. */
export function parseProcStat(
  text: string,
): { state: string; ppid: number; utime: number; stime: number; cutime: number; cstime: number } | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const f = text.slice(close + 2).split(' ');
  // after "pid (comm) ": state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14), in clock ticks
  const state = f[0];
  const [ppid, utime, stime, cutime, cstime] = [f[1], f[11], f[12], f[13], f[14]].map(Number);
  if (state === undefined || [ppid, utime, stime, cutime, cstime].some((n) => n === undefined || !Number.isFinite(n))) return undefined;
  return { state, ppid: ppid!, utime: utime!, stime: stime!, cutime: cutime!, cstime: cstime! };
}
