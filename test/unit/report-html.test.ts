// The HTML report as text: self-contained, escaped, one timeline bar per rank, charts from usage.
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { byteTickStep, outcomeClass, renderHtml, shellWord, tickStep, type HtmlInput } from '../../src/report/html.js';
import type { JobOutcome, JobPlan, UsageFigures } from '../../src/model/types.js';

function plan(n: number, hosts = ['h1', 'h2']): JobPlan {
  const ranks = Array.from({ length: n }, (_, r) => ({ rank: r, proxy: r % hosts.length, host: hosts[r % hosts.length] as string, localRank: 0, segment: 0, appnum: 0, program: './a', args: [] }));
  return {
    size: n,
    kvsname: 'kvs_1',
    proxies: hosts.map((h, i) => ({ index: i, host: h, ranks: ranks.filter((r) => r.proxy === i).map((r) => r.rank) })),
    ranks,
    processMapping: '',
    hostSource: { kind: 'cmdline' },
  };
}

const fig = (cpu: number, mem: number | null): UsageFigures => ({ cpuUserSec: cpu, cpuSysSec: cpu / 4, memPeakBytes: mem, ioReadBytes: 0, ioWriteBytes: 0, pidsPeak: 1, oomKilled: false });

function outcome(): JobOutcome {
  return {
    causes: [{ kind: 'rank-failed', rank: 2, host: 'h1', outcome: { kind: 'exited', code: 3 } }],
    ranks: [
      { rank: 0, host: 'h1', outcome: { kind: 'signaled', signal: 'SIGTERM' }, times: { startMs: 10, endMs: 500 } },
      { rank: 1, host: 'h2', outcome: { kind: 'exited', code: 0 }, times: { startMs: 12, endMs: 12 } },
      { rank: 2, host: 'h1', outcome: { kind: 'exited', code: 3 }, times: { startMs: 11, endMs: 480 } },
      { rank: 3, host: 'h2', outcome: { kind: 'not-started', reason: 'proxy on h2 did not start' } },
    ],
    phases: { ranksStartedMs: 12, firstBarrierMs: 40, lastRankEndedMs: 500, doneMs: 520 },
    usage: [
      { host: 'h1', cgroup: 'v2', tmp: 'private', total: fig(2, 3 << 20), ranks: { 0: fig(1, 1 << 20), 2: fig(1, 2 << 20) } },
      { host: 'h2', cgroup: 'v2', tmp: 'private', total: fig(0, null), ranks: { 1: fig(0, null) } },
    ],
  };
}

const input = (over: Partial<HtmlInput> = {}): HtmlInput => ({
  outcome: outcome(),
  plan: plan(4),
  argv: ['tsmpiexec', '-n', '4', './a', '<script>alert(1)</script>', "it's"],
  exitStatus: 3,
  generatedAt: '2026-11-21T12:00:00Z',
  version: '0.1.0',
  ...over,
});

const bars = (html: string): Array<{ rank: number; cls: string; width: number }> =>
  [...html.matchAll(/<rect class="(bar [^"]*)" data-rank="(\d+)" x="[\d.]+" y="[\d.]+" width="([\d.]+)"/g)].map((m) => ({ cls: m[1] as string, rank: Number(m[2]), width: Number(m[3]) }));

describe('renderHtml', () => {
  it('draws one timeline bar per rank, each with a width, coloured by outcome', () => {
    const b = bars(renderHtml(input()));
    expect(b.map((x) => x.rank)).toEqual([0, 1, 2, 3]);
    for (const x of b) expect(x.width).toBeGreaterThan(0);
    expect(b.map((x) => x.cls)).toEqual(['bar o-signaled', 'bar o-ok', 'bar o-failed first', 'bar o-not-started']);
    // rank 0 ran 490 of 520 ms: most of the plot
    expect(b[0]?.width).toBeGreaterThan(b[2]?.width ?? Infinity);
  });

  it('is self-contained: nothing fetched from elsewhere, and a CSP that allows only its own script and style', () => {
    const html = renderHtml(input());
    expect(html).not.toMatch(/\b(src|href)=/i);
    expect(html).not.toMatch(/url\(|@import|https?:\/\//i);
    const csp = /http-equiv="Content-Security-Policy" content="([^"]+)"/.exec(html)?.[1] ?? '';
    expect(csp).toContain("default-src 'none'");
    const script = /<script>([\s\S]*?)<\/script>/.exec(html)?.[1] ?? '';
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)?.[1] ?? '';
    expect(csp).toContain(`'sha256-${createHash('sha256').update(script).digest('base64')}'`);
    expect(csp).toContain(`'sha256-${createHash('sha256').update(style).digest('base64')}'`);
    expect(html.match(/<script>/g)).toHaveLength(1);
  });

  it('escapes what the job supplied and shows the command line as it would be typed', () => {
    const html = renderHtml(input());
    expect(html).not.toContain('<script>alert');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain(`tsmpiexec -n 4 ./a &#39;&lt;script&gt;alert(1)&lt;/script&gt;&#39; &#39;it&#39;\\&#39;&#39;s&#39;`);
    expect(shellWord("it's")).toBe(`'it'\\''s'`);
    expect(shellWord('a=b,c:d/e.f')).toBe('a=b,c:d/e.f');
  });

  it('shows the exit status, the failure summary, hosts and per-rank CPU and memory', () => {
    const html = renderHtml(input());
    expect(html).toContain('<span id="exit-status" class="status bad">exit status 3</span>');
    expect(html).toContain('<li>rank 2 on h1: exited with code 3</li>');
    expect(html).toMatch(/<table id="hosts">[\s\S]*<td class="l">h1<\/td><td class="l">0,2<\/td><td>2<\/td><td class="l">v2<\/td>/);
    const cpu = /<svg id="cpu"[\s\S]*?<\/svg>/.exec(html)?.[0] ?? '';
    expect(cpu.match(/class="cpu-user" data-rank="\d"/g)).toHaveLength(3);
    expect(cpu).toMatch(/data-rank="3">unavailable</);
    const mem = /<svg id="mem"[\s\S]*?<\/svg>/.exec(html)?.[0] ?? '';
    expect(mem.match(/class="mem" data-rank="\d"/g)).toHaveLength(2); // rank 1's host cannot measure memory
    expect(mem).toContain('1 MiB'); // a binary-unit axis
  });

  it('says usage is unavailable when the job ran without isolation', () => {
    const o = outcome();
    o.usage = [];
    const html = renderHtml(input({ outcome: o, exitStatus: 0 }));
    expect(html).not.toContain('<svg id="cpu"');
    expect(html).toContain('unavailable: the job ran without isolation');
    expect(html).toContain('class="status ok"');
  });

  it('keeps big jobs readable: thin rows, not every rank labelled, still a bar each', () => {
    const n = 1000;
    const o: JobOutcome = { causes: [], usage: [], phases: { doneMs: 100 }, ranks: Array.from({ length: n }, (_, r) => ({ rank: r, host: 'h1', outcome: { kind: 'exited', code: 0 }, times: { startMs: 1, endMs: 90 } })) };
    const html = renderHtml(input({ outcome: o, plan: plan(n, ['h1']), exitStatus: 0 }));
    expect(bars(html)).toHaveLength(n);
    const labels = html.match(/class="rl"/g) ?? [];
    expect(labels.length).toBeLessThan(n / 2);
    expect(Number(/<svg id="timeline"[^>]* height="(\d+)"/.exec(html)?.[1])).toBeLessThan(4000);
  });

  it('ticks at 1, 2 or 5 times a power of ten (bytes: of a binary unit)', () => {
    expect(tickStep(520)).toBe(100);
    expect(tickStep(0.13)).toBe(0.05);
    expect(byteTickStep(3 << 20)).toBe(512 * 1024);
    expect(byteTickStep(10 << 20)).toBe(2 << 20);
    expect(byteTickStep(700 * 1024)).toBe(200 * 1024);
    expect(outcomeClass({ kind: 'signaled', signal: 'SIGKILL', oomLimitBytes: 1 })).toBe('oom');
    expect(outcomeClass({ kind: 'lost', reason: 'x' })).toBe('lost');
  });
});
