#!/usr/bin/env node
// The scale model (issue #21): the real controller and the real proxy code against many simulated hosts on this
// machine, for 16 to 4096 hosts, as a tree (--tree-width 32) and flat (--no-tree). Each cell is one run of
// bench/scale/controller.mjs (the launcher, one process) with bench/scale/hosts.mjs (every simulated host's
// proxy, one process); see bench/README.md "Scale model" for what is real and what is simulated.
//
//   node bench/scale-model.mjs            # the full grid: writes bench/results/scale-model.{md,json,svg}
//   node bench/scale-model.mjs --quick    # 16-256 hosts, seconds: writes build/bench/scale-model-quick.*
//   node bench/scale-model.mjs --cells 1024x1,4096x1 [--designs tree] [--max-pairs N] [--timeout SEC] [--out DIR]
//   node bench/scale-model.mjs --from bench/results/scale-model.json   # the table and plot again, no runs
//
// Plain Node ESM, node: builtins only; needs `make build` (it imports dist/).
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const HOSTS = [16, 64, 256, 1024, 4096];
const PPN = [1, 8, 64];
const TREE_WIDTH = 32;
const VALUE_BYTES = 360;
const GETS = 8;

function parseCli(argv) {
  const o = { quick: false, cells: undefined, designs: ['flat', 'tree'], maxPairs: 17e6, timeoutSec: 900, out: undefined, from: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--quick') o.quick = true;
    else if (a === '--cells') o.cells = val().split(',').map((c) => c.split('x').map(Number));
    else if (a === '--designs') o.designs = val().split(',');
    else if (a === '--max-pairs') o.maxPairs = Number(val());
    else if (a === '--timeout') o.timeoutSec = Number(val());
    else if (a === '--out') o.out = val();
    else if (a === '--from') o.from = val();
    else if (a === '-h' || a === '--help') {
      process.stdout.write(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 11).map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n');
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  if (o.quick) o.maxPairs = Math.min(o.maxPairs, 200e3);
  return o;
}

/**
 * Key/value pairs the simulated hosts receive at the first barrier: every host gets every rank's put (the
 * KVS broadcast of pmi-wire.md §6). Its cost is what bounds which cells this machine can run.
 */
export function pairsDelivered(hosts, ppn) {
  return hosts * hosts * ppn;
}

/** The cells of the grid: [hosts, ranks per host], run only where the all-to-all fits the budget. */
export function grid(o) {
  // 16 x 256 has the ranks (and so the KVS) of 4096 x 1: the controller's bytes of the two compare hosts alone
  const cells = o.cells ?? [...HOSTS.flatMap((h) => PPN.map((r) => [h, r])), [16, 256]];
  // quick: only the cells that run (a few seconds); the full grid lists the ones it cannot run too
  return cells.map(([h, r]) => ({ hosts: h, ppn: r, run: pairsDelivered(h, r) <= o.maxPairs })).filter((c) => c.run || !o.quick);
}

function runCell(hosts, ppn, design, timeoutSec) {
  const args = [path.join(ROOT, 'bench', 'scale', 'controller.mjs'), '--hosts', String(hosts), '--ppn', String(ppn), '--tree-width', String(TREE_WIDTH), '--value-bytes', String(VALUE_BYTES), '--gets', String(GETS), ...(design === 'flat' ? ['--flat'] : [])];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {}
    }, timeoutSec * 1000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (!line) return resolve({ hosts, ppn, design, ok: false, why: `no result (exit ${code ?? signal}): ${err.trim().split('\n').slice(-3).join(' | ').slice(0, 300)}` });
      resolve(JSON.parse(line));
    });
  });
}

const fmtBytes = (b) => (b >= 1 << 30 ? `${(b / (1 << 30)).toFixed(2)} GiB` : b >= 1 << 20 ? `${(b / (1 << 20)).toFixed(1)} MiB` : b >= 1 << 10 ? `${(b / (1 << 10)).toFixed(1)} KiB` : `${b} B`);
const fmtS = (ms) => (ms >= 10000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`);

/** Bytes of the puts themselves in one barrier: what every host must receive, at least. */
function putBytes(r) {
  return r.ranks * r.valueBytes;
}

/**
 * Barrier entries that reached the controller, per barrier: a request per proxy where barriers are not gathered,
 * a gathered entry per first-level subtree where they are. Counted over the whole job (its two barriers), since
 * entries for the second barrier may already arrive before the first one's end is seen.
 */
export function barrierEntries(r) {
  const up = r.hostsSide.at.up;
  return ((up['request:barrier'] ?? 0) + (up['tree:gather'] ?? 0)) / 2;
}

export function table(results) {
  const L = [];
  L.push('| hosts | ranks/host | ranks | design | depth | wall to 1st barrier | launcher CPU | hosts CPU | controller msgs in / out | barrier entries in | controller bytes in / out | out ÷ puts | launcher peak RSS |');
  L.push('| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of results) {
    if (r.skipped) {
      L.push(`| ${r.hosts} | ${r.ppn} | ${r.hosts * r.ppn} | ${r.design} | | not run: the hosts would receive ${fmtBytes(r.hosts * r.hosts * r.ppn * VALUE_BYTES)} of puts | | | | | | | |`);
      continue;
    }
    if (!r.ok || !r.barrier1) {
      L.push(`| ${r.hosts} | ${r.ppn} | ${r.hosts * r.ppn} | ${r.design} | | failed: ${(r.why ?? JSON.stringify(r.hostsSide?.errors ?? r.causes ?? '')).replace(/\|/g, '/')} | | | | | | | |`);
      continue;
    }
    const b = r.barrier1;
    const c = b.controller;
    L.push(
      `| ${r.hosts} | ${r.ppn} | ${r.ranks} | ${r.design} | ${r.hostsSide.maxDepth} | ${fmtS(b.wallMs)} | ${fmtS(b.launcherCpuMs)} | ${fmtS(b.hostsCpuMs)} | ${c.upFrames} / ${c.downFrames} | ${barrierEntries(r)} | ${fmtBytes(c.upBytes)} / ${fmtBytes(c.downBytes)} | ${(c.downBytes / putBytes(r)).toFixed(1)} | ${Math.round(r.end.launcherRssMiB)} MiB |`,
    );
  }
  return L.join('\n');
}

// ------------------------------------------------------------------------------------------------ the plot
/** Powers of ten in decimal units, for log axes (10 kB, 1 MB, ...). */
const fmtDec = (unit) => (v) => {
  const p = [['T', 1e12], ['G', 1e9], ['M', 1e6], ['k', 1e3]].find(([, f]) => v >= f);
  return p ? `${Math.round((v / p[1]) * 100) / 100} ${p[0]}${unit}` : `${v} ${unit}`;
};

/**
 * Three log-log panels, drawn by hand: controller bytes out to the end of the first barrier, the same divided by
 * the bytes of the puts (copies of the KVS the controller sends), and the launcher's CPU time to it.
 */
export function svg(results, title) {
  const W = 1380;
  const Hh = 430;
  const panels = [
    { key: (r) => r.barrier1.controller.downBytes, label: 'controller bytes out, to the end of the 1st barrier', fmt: fmtDec('B') },
    { key: (r) => r.barrier1.controller.downBytes / putBytes(r), label: 'controller bytes out ÷ bytes put (KVS copies sent)', fmt: (v) => String(v) },
    { key: (r) => r.barrier1.launcherCpuMs, label: 'launcher CPU time to the end of the 1st barrier', fmt: (v) => (v >= 1000 ? `${v / 1000} s` : `${v} ms`) },
  ];
  const ok = results.filter((r) => r.ok && r.barrier1);
  const series = new Map();
  for (const r of ok) {
    const k = `${r.design} · ${r.ppn}/host`;
    if (!series.has(k)) series.set(k, { design: r.design, ppn: r.ppn, pts: [] });
    series.get(k).pts.push(r);
  }
  const colours = { 1: '#1f77b4', 8: '#d62728', 64: '#2ca02c' };
  const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${Hh}" viewBox="0 0 ${W} ${Hh}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="${W}" height="${Hh}" fill="#fff"/>`);
  out.push(`<text x="${W / 2}" y="18" text-anchor="middle" font-size="13" font-weight="bold">${esc(title)}</text>`);
  const pw = 370;
  const ph = 290;
  panels.forEach((p, pi) => {
    const x0 = 70 + pi * (pw + 55);
    const y0 = 50;
    const vals = ok.map(p.key).filter((v) => v > 0);
    if (vals.length === 0) return;
    const lo = Math.floor(Math.log10(Math.min(...vals)));
    const hi = Math.ceil(Math.log10(Math.max(...vals)));
    const xs = (h) => x0 + ((Math.log2(h) - 4) / (12 - 4)) * pw;
    const ys = (v) => y0 + ph - ((Math.log10(v) - lo) / Math.max(1, hi - lo)) * ph;
    out.push(`<text x="${x0 + pw / 2}" y="${y0 - 8}" text-anchor="middle">${esc(p.label)}</text>`);
    out.push(`<rect x="${x0}" y="${y0}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`);
    for (const h of HOSTS) {
      out.push(`<line x1="${xs(h)}" y1="${y0}" x2="${xs(h)}" y2="${y0 + ph}" stroke="#eee"/>`);
      out.push(`<text x="${xs(h)}" y="${y0 + ph + 14}" text-anchor="middle">${h}</text>`);
    }
    out.push(`<text x="${x0 + pw / 2}" y="${y0 + ph + 30}" text-anchor="middle">hosts</text>`);
    for (let e = lo; e <= hi; e++) {
      const v = 10 ** e;
      out.push(`<line x1="${x0}" y1="${ys(v)}" x2="${x0 + pw}" y2="${ys(v)}" stroke="#eee"/>`);
      out.push(`<text x="${x0 - 4}" y="${ys(v) + 4}" text-anchor="end">${esc(p.fmt(v))}</text>`);
    }
    for (const s of series.values()) {
      const pts = s.pts.slice().sort((a, b) => a.hosts - b.hosts).map((r) => [xs(r.hosts), ys(p.key(r))]);
      const dash = s.design === 'flat' ? ' stroke-dasharray="5,4"' : '';
      out.push(`<polyline fill="none" stroke="${colours[s.ppn] ?? '#555'}" stroke-width="2"${dash} points="${pts.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ')}"/>`);
      for (const [x, y] of pts) {
        out.push(s.design === 'flat' ? `<rect x="${(x - 3).toFixed(1)}" y="${(y - 3).toFixed(1)}" width="6" height="6" fill="#fff" stroke="${colours[s.ppn] ?? '#555'}"/>` : `<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="3.5" fill="${colours[s.ppn] ?? '#555'}"/>`);
      }
    }
  });
  // legend
  let ly = Hh - 40;
  let lx = 80;
  for (const s of [...series.values()].sort((a, b) => a.ppn - b.ppn || a.design.localeCompare(b.design))) {
    const c = colours[s.ppn] ?? '#555';
    out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 24}" y2="${ly}" stroke="${c}" stroke-width="2"${s.design === 'flat' ? ' stroke-dasharray="5,4"' : ''}/>`);
    out.push(`<text x="${lx + 30}" y="${ly + 4}">${esc(`${s.design === 'flat' ? 'flat (--no-tree)' : `tree (--tree-width ${TREE_WIDTH})`}, ${s.ppn} rank${s.ppn === 1 ? '' : 's'}/host`)}</text>`);
    lx += 270;
    if (lx > W - 260) {
      lx = 80;
      ly += 16;
    }
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}

function gitFacts() {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'bench/scale'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
    return { commit, dirty };
  } catch {
    return { commit: '?', dirty: false };
  }
}

async function main() {
  const o = parseCli(process.argv.slice(2));
  if (!fs.existsSync(path.join(ROOT, 'dist', 'proxy', 'main.js'))) throw new Error('dist/ is missing: run make build first');
  if (o.from) {
    const saved = JSON.parse(fs.readFileSync(o.from, 'utf8'));
    const dir = path.dirname(o.from);
    const base = path.basename(o.from, '.json');
    const md = `${saved.head}\n\n${table(saved.results)}\n`;
    fs.writeFileSync(path.join(dir, `${base}.md`), md);
    fs.writeFileSync(path.join(dir, `${base}.svg`), svg(saved.results, saved.title));
    process.stdout.write(md);
    return;
  }
  const started = new Date();
  const results = [];
  for (const cell of grid(o)) {
    for (const design of o.designs) {
      if (!cell.run) {
        results.push({ hosts: cell.hosts, ppn: cell.ppn, design, skipped: true });
        continue;
      }
      const t = Date.now();
      const r = await runCell(cell.hosts, cell.ppn, design, o.timeoutSec);
      results.push(r);
      process.stderr.write(`scale-model: ${cell.hosts} hosts x ${cell.ppn} ${design}: ${r.ok ? `1st barrier ${fmtS(r.barrier1.wallMs)}, controller out ${fmtBytes(r.barrier1.controller.downBytes)}` : `FAILED ${r.why ?? JSON.stringify(r.hostsSide?.errors ?? r.causes)}`} (${fmtS(Date.now() - t)})\n`);
    }
  }
  const g = gitFacts();
  const head = `Scale model, ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC: tsmpiexec ${g.commit}${g.dirty ? ' + uncommitted changes' : ''}, ${os.cpus().length} CPUs, ${Math.round(os.totalmem() / (1 << 30))} GiB, Node ${process.version}; ${VALUE_BYTES}-byte addresses, ${GETS} gets per rank, --tree-width ${TREE_WIDTH}${o.quick ? ' (quick)' : ''}`;
  const title = `tsmpiexec scale model (${g.commit}): tree vs flat, ${VALUE_BYTES}-byte PMI puts`;
  const md = `${head}\n\n${table(results)}\n`;
  process.stdout.write(md);
  const dir = o.out ?? (o.quick || o.cells || o.designs.length < 2 ? path.join(ROOT, 'build', 'bench') : path.join(ROOT, 'bench', 'results'));
  const base = o.quick ? 'scale-model-quick' : 'scale-model';
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `${base}.md`), md);
  fs.writeFileSync(path.join(dir, `${base}.json`), JSON.stringify({ started: started.toISOString(), head, title, tsmpiexec: g, machine: { cpus: os.cpus().length, memGiB: Math.round(os.totalmem() / (1 << 30)), node: process.version }, params: { treeWidth: TREE_WIDTH, valueBytes: VALUE_BYTES, gets: GETS, maxPairs: o.maxPairs }, results }, null, 1) + '\n');
  fs.writeFileSync(path.join(dir, `${base}.svg`), svg(results, title));
  process.stderr.write(`scale-model: wrote ${path.relative(ROOT, path.join(dir, base))}.{md,json,svg}\n`);
  if (results.some((r) => !r.skipped && !r.ok)) process.exitCode = 1;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    process.stderr.write(`scale-model: ${e.message}\n`);
    process.exit(2);
  });
}
