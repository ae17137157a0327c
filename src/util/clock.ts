// Milliseconds since this process started, as performance.now() counts them. The first use of the `performance`
// global loads perf_hooks and a dozen internal modules (about a millisecond of every start); process.uptime()
// reads the same clock.
export function msSinceStart(): number {
  return process.uptime() * 1000;
}
