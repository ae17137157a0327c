// --report-html: one self-contained page about a finished job (no external asset: inline CSS, SVG and a
// few lines of JS, with a Content-Security-Policy that allows nothing else). A timeline of rank lifetimes
// (one bar per rank, coloured by outcome), per-rank CPU and peak-memory charts, the host table, the
// command line and the exit status. Pure: outcome in, text out; main.ts writes the file (mode 0600).
// Everything the job supplied (argv, host names, abort messages) is escaped: a rank's arguments are data.
import { createHash } from 'node:crypto';
import type { JobOutcome, JobPlan, RankOutcome, UsageFigures } from '../model/types.js';
import { describeOutcome, failureSummary, formatBytes, rankRanges } from './summary.js';

export interface HtmlInput {
  outcome: JobOutcome;
  plan: JobPlan;
  /** the command line as typed, program name first */
  argv: readonly string[];
  exitStatus: number;
  /** when the report was made (shown as is) */
  generatedAt: string;
  version: string;
}

const esc = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);

/** A shell word as the user would type it again. */
export function shellWord(w: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}

export type OutcomeClass = 'ok' | 'failed' | 'signaled' | 'oom' | 'not-started' | 'lost';

export function outcomeClass(o: RankOutcome): OutcomeClass {
  switch (o.kind) {
    case 'exited':
      if (o.oomLimitBytes !== undefined) return 'oom';
      return o.code === 0 ? 'ok' : 'failed';
    case 'signaled':
      return o.oomLimitBytes !== undefined ? 'oom' : 'signaled';
    case 'not-started':
      return 'not-started';
    case 'lost':
      return 'lost';
  }
}

const LEGEND: ReadonlyArray<[OutcomeClass, string]> = [
  ['ok', 'exited 0'],
  ['failed', 'exited non-zero'],
  ['signaled', 'killed by a signal'],
  ['oom', 'memory limit'],
  ['lost', 'lost with its host'],
  ['not-started', 'not started'],
];

/** 1, 2 or 5 times a power of ten, so that max/step gives at most about `n` ticks. */
export function tickStep(max: number, n = 6): number {
  if (!(max > 0)) return 1;
  const raw = max / n;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

const fmtMs = (ms: number): string => (ms >= 10_000 ? `${(ms / 1000).toFixed(ms >= 100_000 ? 0 : 1)} s` : `${Math.round(ms)} ms`);
const fmtSec = (s: number): string => `${s < 10 ? s.toFixed(2) : s.toFixed(1)} s`;

/** Layout shared by the charts: a label column, then the plot. */
const W = 900;
const LEFT = 70;
const RIGHT = 20;
const PLOT = W - LEFT - RIGHT;
const TOP = 24;

function rowHeight(n: number): number {
  return Math.max(3, Math.min(18, Math.floor(720 / Math.max(n, 1))));
}

/** Tick step for byte values: 1, 2 or 5 times a binary unit (KiB, MiB, ...), so labels stay round. */
export function byteTickStep(max: number): number {
  let unit = 1;
  while (unit * 1024 <= max) unit *= 1024;
  return tickStep(max / unit) * unit;
}

function axis(max: number, h: number, fmt: (v: number) => string, step = tickStep(max)): string {
  const parts: string[] = [];
  for (let v = 0; v <= max + step * 1e-9; v += step) {
    const x = LEFT + (v / max) * PLOT;
    parts.push(`<line class="grid" x1="${x.toFixed(1)}" y1="${TOP - 4}" x2="${x.toFixed(1)}" y2="${h}"/>`);
    parts.push(`<text class="tick" x="${x.toFixed(1)}" y="${TOP - 8}" text-anchor="middle">${esc(fmt(v))}</text>`);
  }
  return parts.join('');
}

function rankLabel(r: RankRow, y: number, rh: number, n: number): string {
  const every = rh >= 10 ? 1 : Math.ceil(10 / rh);
  if (r.rank % every !== 0 && r.rank !== n - 1) return '';
  return `<text class="rl" x="${LEFT - 6}" y="${(y + rh * 0.75).toFixed(1)}" text-anchor="end">rank ${esc(r.name)}</text>`;
}

interface RankRow {
  rank: number;
  /** `3`, or `1:0` for rank 0 of the job's first MPI_Comm_spawn */
  name: string;
  host: string;
  outcome: RankOutcome;
  cls: OutcomeClass;
  start?: number;
  end?: number;
  usage?: UsageFigures;
}

function timeline(rows: RankRow[], o: JobOutcome, firstCause: number | undefined): string {
  const n = rows.length;
  const rh = rowHeight(n);
  const gap = rh >= 8 ? 2 : rh >= 5 ? 1 : 0;
  const ph = o.phases ?? {};
  const tMax = Math.max(1, ph.doneMs ?? 0, ph.lastRankEndedMs ?? 0, ...rows.map((r) => r.end ?? r.start ?? 0));
  const h = TOP + n * rh + 8;
  const x = (t: number): number => LEFT + (t / tMax) * PLOT;
  const bars = rows.map((r, i) => {
    const y = TOP + i * rh;
    // A rank that never started is a sliver at 0; one still running when its host was lost runs to the end.
    const s = r.start ?? 0;
    const e = r.end ?? (r.start === undefined ? 0 : tMax);
    const w = Math.max(2, x(e) - x(s));
    const title = `rank ${r.name} on ${r.host}: ${describeOutcome(r.outcome)}${r.start !== undefined ? `; ran ${fmtMs(s)} to ${r.end !== undefined ? fmtMs(e) : '(unknown)'}` : ''}`;
    const cls = `bar o-${r.cls}${r.rank === firstCause ? ' first' : ''}`;
    return (
      rankLabel(r, y, rh, n) +
      `<rect class="${cls}" data-rank="${r.rank}" x="${x(s).toFixed(1)}" y="${(y + gap / 2).toFixed(1)}" width="${w.toFixed(1)}" height="${Math.max(1, rh - gap)}"><title>${esc(title)}</title></rect>`
    );
  });
  const marks: string[] = [];
  const mark = (t: number | undefined, label: string, row: number): void => {
    if (t === undefined) return;
    marks.push(`<line class="phase" x1="${x(t).toFixed(1)}" y1="${TOP}" x2="${x(t).toFixed(1)}" y2="${h - 4}"><title>${esc(`${label} at ${fmtMs(t)}`)}</title></line>`);
    const right = x(t) > W - 140;
    marks.push(`<text class="phase-label" x="${(right ? x(t) - 3 : x(t) + 3).toFixed(1)}" y="${h + 10 + row * 12}" text-anchor="${right ? 'end' : 'start'}">${esc(label)}</text>`);
  };
  mark(ph.ranksStartedMs, 'all ranks started', 0);
  mark(ph.firstBarrierMs, 'first PMI barrier', 1);
  mark(ph.lastRankEndedMs, 'last rank ended', 2);
  const total = h + 10 + 3 * 12;
  return `<svg id="timeline" class="chart" viewBox="0 0 ${W} ${total}" width="${W}" height="${total}" role="img" aria-label="rank lifetimes">${axis(tMax, h - 4, fmtMs)}${bars.join('')}${marks.join('')}</svg>`;
}

interface Seg {
  value: number;
  cls: string;
  title: string;
}

function barChart(id: string, label: string, rows: RankRow[], segsOf: (r: RankRow) => Seg[] | null, fmt: (v: number) => string, floor: number, stepOf = tickStep): string {
  const n = rows.length;
  const rh = rowHeight(n);
  const gap = rh >= 8 ? 2 : rh >= 5 ? 1 : 0;
  const all = rows.map(segsOf);
  // the axis spans at least `floor`, so a job that used nothing gets a sane scale, not ticks of 0
  const max = Math.max(floor, ...all.map((s) => (s ?? []).reduce((a, b) => a + b.value, 0)));
  const h = TOP + n * rh + 8;
  const body = rows.map((r, i) => {
    const y = TOP + i * rh;
    const segs = all[i];
    let out = rankLabel(r, y, rh, n);
    if (segs === null || segs === undefined) {
      return out + `<text class="na" x="${LEFT + 4}" y="${(y + rh * 0.75).toFixed(1)}" data-rank="${r.rank}">unavailable</text>`;
    }
    let x0 = LEFT;
    for (const s of segs) {
      // a measured 0 is drawn as a hairline, so "measured, nothing used" differs from "unavailable"
      const w = Math.max(1, (s.value / max) * PLOT);
      out += `<rect class="${s.cls}" data-rank="${r.rank}" x="${x0.toFixed(1)}" y="${(y + gap / 2).toFixed(1)}" width="${w.toFixed(1)}" height="${Math.max(1, rh - gap)}"><title>${esc(s.title)}</title></rect>`;
      x0 += w;
    }
    return out;
  });
  return `<svg id="${id}" class="chart" viewBox="0 0 ${W} ${h}" width="${W}" height="${h}" role="img" aria-label="${esc(label)}">${axis(max, h - 4, fmt, stepOf(max))}${body.join('')}</svg>`;
}

const SCRIPT = `document.documentElement.classList.add('js');
document.addEventListener('mouseover', function (e) {
  var t = e.target && e.target.closest ? e.target.closest('[data-rank]') : null;
  var r = t ? t.getAttribute('data-rank') : null;
  document.querySelectorAll('.hl').forEach(function (el) { el.classList.remove('hl'); });
  if (r !== null) document.querySelectorAll('[data-rank="' + r + '"]').forEach(function (el) { el.classList.add('hl'); });
});`;

const STYLE = `:root{--fg:#1d2330;--bg:#fff;--muted:#6b7280;--grid:#e5e7eb;--ok:#2e9e4f;--failed:#d93025;--signaled:#e8710a;--oom:#8e24aa;--lost:#5f6368;--ns:#b0b6be;--user:#1a73e8;--sys:#8ab4f8;--mem:#12a4af}
@media (prefers-color-scheme:dark){:root{--fg:#e8eaed;--bg:#1e1f22;--muted:#9aa0a6;--grid:#3c4043}}
body{font:14px/1.45 system-ui,sans-serif;color:var(--fg);background:var(--bg);margin:24px auto;max-width:960px;padding:0 16px}
h1{font-size:20px;margin:0 0 12px}h2{font-size:16px;margin:28px 0 8px}
pre{background:rgba(127,127,127,.12);padding:8px 10px;border-radius:4px;white-space:pre-wrap;word-break:break-all}
.status{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-weight:600}.status.ok{background:var(--ok)}.status.bad{background:var(--failed)}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}th,td{padding:3px 10px;border-bottom:1px solid var(--grid);text-align:right}th:first-child,td:first-child,th.l,td.l{text-align:left}
.chart text{fill:var(--fg);font-size:11px}.chart .tick,.chart .na,.chart .phase-label{fill:var(--muted)}.grid{stroke:var(--grid)}
.phase{stroke:var(--muted);stroke-dasharray:4 3}
.o-ok{fill:var(--ok);background:var(--ok)}.o-failed{fill:var(--failed);background:var(--failed)}.o-signaled{fill:var(--signaled);background:var(--signaled)}.o-oom{fill:var(--oom);background:var(--oom)}.o-lost{fill:var(--lost);background:var(--lost)}.o-not-started{fill:var(--ns);background:var(--ns)}
.first{stroke:var(--fg);stroke-width:1.5}.cpu-user{fill:var(--user);background:var(--user)}.cpu-sys{fill:var(--sys);background:var(--sys)}.mem{fill:var(--mem)}
.js rect.hl{opacity:.6}.js tr.hl td{background:rgba(127,127,127,.15)}
.legend span{display:inline-block;margin-right:14px}i.sw{display:inline-block;width:12px;height:12px;margin-right:5px;vertical-align:-1px;border-radius:2px}
.muted{color:var(--muted)}`;

const NO_USAGE = '<p class="muted na-all">unavailable: the job ran without isolation (no cgroup accounting)</p>';

export function renderHtml(input: HtmlInput): string {
  const { outcome: o, plan } = input;
  const usage = new Map<number, UsageFigures>();
  for (const h of o.usage) for (const [r, u] of Object.entries(h.ranks)) usage.set(Number(r), u);
  const rows: RankRow[] = o.ranks.map((r) => ({
    rank: r.rank,
    name: r.spawn ? `${r.spawn.group}:${r.spawn.rank}` : String(r.rank),
    host: r.host,
    outcome: r.outcome,
    cls: outcomeClass(r.outcome),
    start: r.times?.startMs,
    end: r.times?.endMs,
    usage: usage.get(r.rank),
  }));
  const first = o.causes[0];
  const firstCause = first && 'rank' in first ? first.rank : undefined;
  const ok = input.exitStatus === 0;
  const summary = failureSummary(o);
  const cmd = input.argv.map(shellWord).join(' ');
  const legend = LEGEND.filter(([c]) => rows.some((r) => r.cls === c))
    .map(([c, t]) => `<span><i class="sw o-${c}"></i>${esc(t)}</span>`)
    .join('');
  const haveUsage = o.usage.length > 0;
  const cpu = barChart(
    'cpu',
    'CPU seconds per rank',
    rows,
    (r) =>
      r.usage
        ? [
            { value: r.usage.cpuUserSec, cls: 'cpu-user', title: `rank ${r.name}: ${fmtSec(r.usage.cpuUserSec)} user` },
            { value: r.usage.cpuSysSec, cls: 'cpu-sys', title: `rank ${r.name}: ${fmtSec(r.usage.cpuSysSec)} system` },
          ]
        : null,
    fmtSec,
    0.01,
  );
  const mem = barChart(
    'mem',
    'peak memory per rank',
    rows,
    (r) => (r.usage && r.usage.memPeakBytes !== null ? [{ value: r.usage.memPeakBytes, cls: 'mem', title: `rank ${r.name}: ${formatBytes(r.usage.memPeakBytes)} peak` }] : null),
    (v) => formatBytes(Math.round(v)),
    1024,
    byteTickStep,
  );
  const hostRows = plan.proxies.map((p) => {
    const u = o.usage.find((h) => h.host === p.host);
    const cells = [
      `<td class="l">${esc(p.host)}</td>`,
      `<td class="l">${esc(rankRanges(p.ranks))}</td>`,
      `<td>${p.ranks.length}</td>`,
      `<td class="l">${u ? esc(u.cgroup) : 'none'}</td>`,
      `<td class="l">${u ? esc(u.tmp) : 'none'}</td>`,
      `<td>${u ? esc(fmtSec(u.total.cpuUserSec + u.total.cpuSysSec)) : 'unavailable'}</td>`,
      `<td>${u && u.total.memPeakBytes !== null ? esc(formatBytes(u.total.memPeakBytes)) : 'unavailable'}</td>`,
    ];
    return `<tr>${cells.join('')}</tr>`;
  });
  const rankRows = rows.map((r) => {
    const u = r.usage;
    const cells = [
      `<td>${esc(r.name)}</td>`,
      `<td class="l">${esc(r.host)}</td>`,
      `<td class="l"><i class="sw o-${r.cls}"></i>${esc(describeOutcome(r.outcome))}</td>`,
      `<td>${r.start !== undefined ? esc(fmtMs(r.start)) : '-'}</td>`,
      `<td>${r.end !== undefined ? esc(fmtMs(r.end)) : '-'}</td>`,
      `<td>${u ? esc(fmtSec(u.cpuUserSec)) : 'unavailable'}</td>`,
      `<td>${u ? esc(fmtSec(u.cpuSysSec)) : 'unavailable'}</td>`,
      `<td>${u && u.memPeakBytes !== null ? esc(formatBytes(u.memPeakBytes)) : 'unavailable'}</td>`,
    ];
    return `<tr data-rank="${r.rank}">${cells.join('')}</tr>`;
  });
  const scriptHash = createHash('sha256').update(SCRIPT).digest('base64');
  const styleHash = createHash('sha256').update(STYLE).digest('base64');
  const csp = `default-src 'none'; style-src 'sha256-${styleHash}'; script-src 'sha256-${scriptHash}'`;
  const title = `tsmpiexec: ${plan.size} rank${plan.size === 1 ? '' : 's'}, exit ${input.exitStatus}`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>tsmpiexec job report</h1>
<p><span id="exit-status" class="status ${ok ? 'ok' : 'bad'}">exit status ${input.exitStatus}</span>
 <span class="muted">${plan.size} rank${plan.size === 1 ? '' : 's'} on ${plan.proxies.length} host${plan.proxies.length === 1 ? '' : 's'}; tsmpiexec ${esc(input.version)}; ${esc(input.generatedAt)}</span></p>
<pre id="command">${esc(cmd)}</pre>
${summary.length > 0 ? `<ul id="causes">${summary.map((l) => `<li>${esc(l)}</li>`).join('')}</ul>` : ''}
<h2>Rank lifetimes</h2>
<p class="legend">${legend}</p>
${timeline(rows, o, firstCause)}
<h2>CPU time per rank</h2>
${haveUsage ? `<p class="legend"><span><i class="sw cpu-user"></i>user</span><span><i class="sw cpu-sys"></i>system</span></p>\n${cpu}` : NO_USAGE}
<h2>Peak memory per rank</h2>
${haveUsage ? mem : NO_USAGE}
<h2>Hosts</h2>
<table id="hosts"><thead><tr><th>host</th><th class="l">ranks</th><th>count</th><th class="l">cgroup</th><th class="l">tmp</th><th>CPU</th><th>memory peak</th></tr></thead>
<tbody>${hostRows.join('')}</tbody></table>
<h2>Ranks</h2>
<table id="ranks"><thead><tr><th>rank</th><th class="l">host</th><th class="l">outcome</th><th>start</th><th>end</th><th>CPU user</th><th>CPU sys</th><th>memory peak</th></tr></thead>
<tbody>${rankRows.join('')}</tbody></table>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
