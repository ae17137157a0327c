#!/usr/bin/env node
// Where tsmpiexec spends its CPU: runs a case under `node --cpu-prof` and prints the top self-time
// functions (and the same grouped by file), from the .cpuprofile V8 writes at exit.
//
//   node bench/profile.mjs [CASE ...] [--top N] [--keep]      (CASE: floor, hello-64, pmi-1024, pmi-256,
//                                                              stdout-null, stdin-pipe; default: the first three)
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
  'hello-64': { args: ['-n', '64', path.join(B, 'hello')] },
  'pmi-256': { args: ['-n', '256', path.join(B, 'pmi_exchange')] },
  'pmi-1024': { args: ['-n', '1024', path.join(B, 'pmi_exchange')] },
  'stdout-null': { args: ['-n', '4', path.join(B, 'writer'), '256'], stdout: 'null' },
  'stdin-pipe': { args: ['-n', '1', path.join(B, 'reader')], stdinCmd: 'dd if=/dev/zero bs=1M count=1024 status=none' },
};

const argv = process.argv.slice(2);
let top = 15;
let keep = false;
const names = [];
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--top') top = Number(argv[++i]);
  else if (argv[i] === '--keep') keep = true;
  else if (CASES[argv[i]]) names.push(argv[i]);
  else {
    process.stderr.write(`profile: unknown case ${argv[i]} (cases: ${Object.keys(CASES).join(', ')})\n`);
    process.exit(2);
  }
}
if (names.length === 0) names.push('floor', 'hello-64', 'pmi-1024');

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
  const sorted = (m) => [...m].sort((a, b) => b[1] - a[1]);
  return { total, functions: sorted(fn), files: sorted(byFile) };
}

for (const name of names) {
  const c = CASES[name];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsmpiprof-'));
  const cmd = [process.execPath, '--cpu-prof', `--cpu-prof-dir=${dir}`, path.join(ROOT, 'bin', 'tsmpiexec.js'), ...c.args];
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
  const pct = (ms) => `${((100 * ms) / s.total).toFixed(1).padStart(5)}%`;
  console.log(`\n## ${name}: tsmpiexec ${c.args.join(' ').replace(B + '/', '')} — wall ${wall.toFixed(0)} ms, profiled ${s.total.toFixed(0)} ms`);
  console.log(`\ntop ${top} self time:`);
  for (const [k, ms] of s.functions.slice(0, top)) console.log(`  ${ms.toFixed(1).padStart(8)} ms ${pct(ms)}  ${k}`);
  console.log(`\nby file:`);
  for (const [k, ms] of s.files.slice(0, 10)) console.log(`  ${ms.toFixed(1).padStart(8)} ms ${pct(ms)}  ${k}`);
  if (keep) console.log(`\n(profile kept: ${path.join(dir, files[0])}; open it in Chrome DevTools → Performance)`);
  else fs.rmSync(dir, { recursive: true, force: true });
}
