// One line per fact across hosts: a notice that every host of a job says alike ("isolation on h3: no cgroup
// delegation, ...") is said once, naming the hosts (`isolation on h1-h16: ...`), not once per host.
// Notices of the form `<what> on <host>: <rest>` are held until every proxy is up (or a short while), then
// merged by (what, rest); anything else passes at once.

/** `h1-h3,h5,login`: names that differ only in a trailing number, in runs; others as they are, in order. */
export function hostRanges(names: readonly string[]): string {
  const groups = new Map<string, number[]>();
  const order: string[] = [];
  const plain: string[] = [];
  for (const n of names) {
    const m = /^(.*?)(\d+)$/.exec(n);
    // a number with a leading zero (n01) keeps its spelling: not merged
    if (!m || (m[2]?.length ?? 0) > 1 && m[2]?.startsWith('0')) {
      if (!order.includes(`\0${n}`)) order.push(`\0${n}`);
      plain.push(n);
      continue;
    }
    const prefix = m[1] ?? '';
    if (!groups.has(prefix)) {
      groups.set(prefix, []);
      order.push(prefix);
    }
    groups.get(prefix)?.push(Number(m[2]));
  }
  const out: string[] = [];
  for (const key of order) {
    if (key.startsWith('\0')) {
      out.push(key.slice(1));
      continue;
    }
    const nums = [...new Set(groups.get(key) ?? [])].sort((a, b) => a - b);
    let i = 0;
    while (i < nums.length) {
      let j = i;
      while (j + 1 < nums.length && (nums[j + 1] as number) === (nums[j] as number) + 1) j++;
      out.push(i === j ? `${key}${nums[i]}` : `${key}${nums[i]}-${key}${nums[j]}`);
      i = j + 1;
    }
  }
  return out.join(',');
}

export class HostNoticeMerger {
  private readonly held = new Map<string, { what: string; rest: string; hosts: string[] }>();
  private timer: NodeJS.Timeout | undefined;
  private open = true;

  constructor(
    private readonly hosts: ReadonlySet<string>,
    private readonly emit: (line: string) => void,
    private readonly holdMs = 2000,
  ) {}

  add(line: string): void {
    const m = /^(.+?) on (\S+): (.+)$/s.exec(line);
    if (!this.open || this.hosts.size < 2 || !m || !this.hosts.has(m[2] ?? '')) return this.emit(line);
    const [, what = '', host = '', rest = ''] = m;
    const key = `${what}\0${rest}`;
    const g = this.held.get(key) ?? { what, rest, hosts: [] };
    g.hosts.push(host);
    this.held.set(key, g);
    if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), this.holdMs);
      this.timer.unref();
    }
  }

  /** Say what is held, merged; from now on notices pass at once. */
  flush(): void {
    this.open = false;
    clearTimeout(this.timer);
    for (const g of this.held.values()) this.emit(`${g.what} on ${hostRanges(g.hosts)}: ${g.rest}`);
    this.held.clear();
  }
}
