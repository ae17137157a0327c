#!/usr/bin/env node
// Where tsmpiexec spends its CPU: runs a case under `node --cpu-prof` and prints the top self-time
// functions (and the same grouped by file), from the .cpuprofile V8 writes at exit.
//
//   node bench/profile.mjs [CASE ...] [--top N] [--keep] [--bin PATH] [-- EXTRA TSMPIEXEC OPTIONS]
//   node bench/profile.mjs --read FILE.cpuprofile [--top N]      (summarise a profile taken by hand)
//   CASE: floor, true-256 (rank starts alone), hello-64, pmi-1024, pmi-256, stdout-null, stdin-pipe (default:
//   floor, hello-64, pmi-1024). --bin: another tsmpiexec.js, e.g. build/bench/tsmpiexec/bin/tsmpiexec.js, the
//   copy the last `run.mjs` measured.
//
// Self time of a function = the sampling intervals whose innermost frame is that function. "(program)" is
// native code V8 cannot attribute (libuv, syscalls, the C++ side of spawn), "(garbage collector)" is GC,
// "(idle)" is the event loop waiting. Run `node bench/run.mjs` first: it compiles build/bench/.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const B = path.join(ROOT, 'build', 'bench');
const CASES = {
  floor: { args: ['-n', '1', '/bin/true'] },
  'true-256': { args: ['-n', '256', '/bin/true'] },
  'hello-64': { args: ['-n', '64', path.join(B, 'hello')] },
  'pmi-256': { args: ['-n', '256', path.join(B, 'pmi_exchange')] },
  'pmi-1024': { args: ['-n', '1024', path.join(B, 'pmi_exchange')] },
  'stdout-null': { args: ['-n', '4', path.join(B, 'writer'), '256'], stdout: 'null' },
  'stdin-pipe': { args: ['-n', '1', path.join(B, 'reader')], stdinCmd: 'dd if=/dev/zero bs=1M count=1024 status=none' },
};

const argv = process.argv.slice(2);
let top = 15;
let keep = false;
let bin = path.join(ROOT, 'bin', 'tsmpiexec.js');
let extra = [];
const names = [];
const reads = [];
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--top') top = Number(argv[++i]);
  else if (argv[i] === '--keep') keep = true;
  else if (argv[i] === '--bin') bin = path.resolve(argv[++i]);
  else if (argv[i] === '--read') reads.push(argv[++i]);
  else if (argv[i] === '--') {
    extra = argv.slice(i + 1);
    break;
  }
  else if (CASES[argv[i]]) names.push(argv[i]);
  else {
    process.stderr.write(`profile: unknown case ${argv[i]} (cases: ${Object.keys(CASES).join(', ')})\n`);
    process.exit(2);
  }
}
if (names.length === 0 && reads.length === 0) names.push('floor', 'hello-64', 'pmi-1024');

const short = (url) => {
  if (!url) return '';
  const p = url.replace(/^file:\/\//, '');
  return p.startsWith(ROOT) ? path.relative(ROOT, p) : p.replace(/^node:/, 'node:');
};

function summarise(file) {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map();
  let total = 0;
  for (let i = 0; i < prof.samples.length; i++) {
    const dt = (prof.timeDeltas[i] ?? 0) / 1000;
    total += dt;
    self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + dt);
  }
  const fn = new Map();
  const byFile = new Map();
  for (const [id, ms] of self) {
    const cf = byId.get(id).callFrame;
    const where = cf.url ? `${short(cf.url)}:${cf.lineNumber + 1}` : '';
    const key = `${cf.functionName || '(anonymous)'}${where ? ` ${where}` : ''}`;
    fn.set(key, (fn.get(key) ?? 0) + ms);
    const f = cf.url ? short(cf.url) : cf.functionName;
    byFile.set(f, (byFile.get(f) ?? 0) + ms);
  }
  // inclusive time of tsmpiexec's own functions (dist/): self plus everything they called
  const children = new Map(prof.nodes.map((n) => [n.id, n.children ?? []]));
  const incl = new Map();
  const totalOf = (id) => {
    if (incl.has(id)) return incl.get(id);
    let t = self.get(id) ?? 0;
    for (const c of children.get(id)) t += totalOf(c);
    incl.set(id, t);
    return t;
  };
  const inclusive = new Map();
  const walk = (id, onStack) => {
    const cf = byId.get(id).callFrame;
    const key = cf.url.includes('/dist/') ? `${cf.functionName || '(anonymous)'} ${short(cf.url)}:${cf.lineNumber + 1}` : undefined;
    const fresh = key !== undefined && !onStack.has(key); // count a recursive function once
    if (fresh) {
      inclusive.set(key, (inclusive.get(key) ?? 0) + totalOf(id));
      onStack.add(key);
    }
    for (const c of children.get(id)) walk(c, onStack);
    if (fresh) onStack.delete(key);
  };
  walk(prof.nodes[0].id, new Set());
  const sorted = (m) => [...m].sort((a, b) => b[1] - a[1]);
  return { total, functions: sorted(fn), files: sorted(byFile), inclusive: sorted(inclusive) };
}

function print(title, s) {
  const pct = (ms) => `${((100 * ms) / s.total).toFixed(1).padStart(5)}%`;
  console.log(`\n## ${title}, profiled ${s.total.toFixed(0)} ms`);
  console.log(`\ntop ${top} self time:`);
  for (const [k, ms] of s.functions.slice(0, top)) console.log(`  ${ms.toFixed(1).padStart(8)} ms ${pct(ms)}  ${k}`);
  console.log(`\ntop ${top} tsmpiexec functions by inclusive time (self + callees):`);
  for (const [k, ms] of s.inclusive.slice(0, top)) console.log(`  ${ms.toFixed(1).padStart(8)} ms ${pct(ms)}  ${k}`);
  console.log(`\nby file:`);
  for (const [k, ms] of s.files.slice(0, 10)) console.log(`  ${ms.toFixed(1).padStart(8)} ms ${pct(ms)}  ${k}`);
}

for (const f of reads) print(f, summarise(f));

for (const name of names) {
  const c = CASES[name];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsmpiprof-'));
  const cmd = [process.execPath, '--cpu-prof', `--cpu-prof-dir=${dir}`, bin, ...extra, ...c.args];
  const q = (s) => `'${s.replace(/'/g, `'\\''`)}'`;
  const shell = `${c.stdinCmd ? `${c.stdinCmd} | ` : ''}exec ${cmd.map(q).join(' ')}${c.stdout === 'null' ? ' >/dev/null' : ' >/dev/null'}`;
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/bin/sh', ['-c', shell], { stdio: ['ignore', 'inherit', 'pipe'], timeout: 180_000, encoding: 'utf8' });
  const wall = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) process.stderr.write(`profile: ${name} exited ${r.status ?? r.signal}: ${r.stderr.slice(0, 500)}\n`);
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length === 0) {
    process.stderr.write(`profile: ${name}: no profile written\n`);
    continue;
  }
  const s = summarise(path.join(dir, files[0]));
  print(`${name}: tsmpiexec ${[...extra, ...c.args].join(' ').replace(B + '/', '')} — wall ${wall.toFixed(0)} ms${r.status === 0 ? '' : ` (FAILED: exit ${r.status ?? r.signal})`}`, s);
  if (keep) console.log(`\n(profile kept: ${path.join(dir, files[0])}; open it in Chrome DevTools → Performance)`);
  else fs.rmSync(dir, { recursive: true, force: true });
}
