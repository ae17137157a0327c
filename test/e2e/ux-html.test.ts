// --report-html end to end: real jobs write the page, headless Chromium (Debian `chromium`) renders it.
// Checked in the rendered page, not in our own text: one timeline bar per rank with a non-zero drawn
// width, CPU and memory bars, the inline script allowed by the page's CSP; and in a screenshot, that
// the outcome colours are actually painted. The file is the owner's alone (0600).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { FIX, killLive, leftovers, runTsmpiexec, type RunResult } from '../helpers/run.js';

let dir: string;
let chromium: string;
let lastMarker: string | undefined;

async function run(args: string[]): Promise<RunResult> {
  const r = await runTsmpiexec(args, { env: { NO_COLOR: '1' }, timeoutMs: 30_000 });
  lastMarker = r.marker;
  return r;
}

function findChromium(): string {
  for (const name of ['chromium', 'chromium-browser', 'google-chrome']) {
    const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
    if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  }
  throw new Error('headless Chromium is missing: apt-get install chromium (make system-deps installs it as root)');
}

/** Chromium with nothing that reaches the network; its profile in our temp dir. */
function browse(what: string[], file: string): string {
  const profile = fs.mkdtempSync(path.join(dir, 'profile-'));
  const args = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`, '--force-device-scale-factor=1',
    '--hide-scrollbars', '--window-size=1000,2000', ...what, `file://${file}`,
  ];
  return execFileSync(chromium, args, { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
}

interface Measure {
  js: boolean;
  bars: Array<{ rank: string; cls: string; w: number; h: number }>;
  cpu: Array<{ rank: string; w: number }>;
  mem: Array<{ rank: string; w: number }>;
  hosts: number;
  command: string;
}

/** The page as rendered: a copy with one more script (its hash added to the CSP) that measures the layout. */
function measure(html: string): Measure {
  const probe = `(function () {
  function m(sel) { return Array.prototype.map.call(document.querySelectorAll(sel), function (e) { var b = e.getBoundingClientRect(); return { rank: e.getAttribute('data-rank'), cls: e.getAttribute('class'), w: b.width, h: b.height }; }); }
  var out = { js: document.documentElement.classList.contains('js'), bars: m('#timeline rect.bar'), cpu: m('#cpu rect'), mem: m('#mem rect'),
    hosts: document.querySelectorAll('#hosts tbody tr').length, command: document.getElementById('command').textContent };
  var pre = document.createElement('pre'); pre.id = 'measure'; pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
})();`;
  const hash = createHash('sha256').update(probe).digest('base64');
  const copy = html
    .replace(/script-src ([^;"]+)/, `script-src $1 'sha256-${hash}'`)
    .replace('</body>', `<script>${probe}</script></body>`);
  expect(copy).not.toBe(html);
  const file = path.join(dir, `measure-${Date.now()}.html`);
  fs.writeFileSync(file, copy);
  const dom = browse(['--dump-dom'], file);
  const m = /<pre id="measure">([^<]*)<\/pre>/.exec(dom);
  if (!m) throw new Error(`the measuring script did not run; dumped DOM starts: ${dom.slice(0, 300)}`);
  return JSON.parse((m[1] as string).replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&')) as Measure;
}

/** RGB pixel counts of a screenshot (8-bit RGB or RGBA PNG, all five filter types). */
function pixels(png: Buffer): Map<string, number> {
  expect(png.subarray(0, 8).equals(Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]))).toBe(true);
  let off = 8;
  let width = 0;
  let height = 0;
  let bpp = 0;
  const idat: Buffer[] = [];
  while (off < png.length) {
    const len = png.readUInt32BE(off);
    const type = png.toString('latin1', off + 4, off + 8);
    const data = png.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      expect(data[8], 'bit depth').toBe(8);
      bpp = data[9] === 6 ? 4 : data[9] === 2 ? 3 : 0;
      expect(bpp, 'colour type').toBeGreaterThan(0);
    }
    if (type === 'IDAT') idat.push(data);
    off += 12 + len;
  }
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * bpp;
  const px = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)];
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? (px[y * stride + x - bpp] as number) : 0;
      const b = y > 0 ? (px[(y - 1) * stride + x] as number) : 0;
      const c = x >= bpp && y > 0 ? (px[(y - 1) * stride + x - bpp] as number) : 0;
      let v = raw[y * (stride + 1) + 1 + x] as number;
      if (f === 1) v += a;
      else if (f === 2) v += b;
      else if (f === 3) v += (a + b) >> 1;
      else if (f === 4) {
        const p = a + b - c;
        const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      px[y * stride + x] = v & 255;
    }
  }
  const counts = new Map<string, number>();
  for (let i = 0; i < px.length; i += bpp) {
    const k = `${px[i]},${px[i + 1]},${px[i + 2]}`;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return counts;
}

function screenshot(file: string): Map<string, number> {
  const png = path.join(dir, `shot-${Date.now()}.png`);
  browse([`--screenshot=${png}`], file);
  return pixels(fs.readFileSync(png));
}

// the outcome colours of report/html.ts (light scheme)
const OK = '46,158,79';
const FAILED = '217,48,37';
const SIGNALED = '232,113,10';

beforeAll(() => {
  chromium = findChromium();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsmpi-uxhtml-'));
});

afterAll(() => {
  if (dir && process.env.TSMPIEXEC_KEEP_TMP !== '1') fs.rmSync(dir, { recursive: true, force: true });
});

afterEach(async () => {
  killLive();
  if (lastMarker) {
    const left = await leftovers(lastMarker);
    lastMarker = undefined;
    expect(left, 'processes of the job left behind').toEqual([]);
  }
});

describe('--report-html rendered by Chromium', () => {
  it('an MPI job: one drawn bar per rank, CPU and memory charts, its own script allowed by the CSP', async () => {
    const hello = path.join(FIX, 'hello');
    if (!fs.existsSync(hello)) throw new Error(`MPI fixtures are missing in ${FIX}: is mpicc.mpich installed? (make system-deps)`);
    const file = path.join(dir, 'hello.html');
    const json = path.join(dir, 'hello.json');
    const r = await run(['--report-html', file, '--report-json', json, '-n', '4', hello]);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const html = fs.readFileSync(file, 'utf8');
    expect(html).not.toMatch(/\b(src|href)=|url\(|https?:\/\//i);

    const dom = browse(['--dump-dom'], file);
    expect(dom).toMatch(/<html lang="en" class="js">/); // the inline script ran under the page's own CSP
    expect(dom).toContain('exit status 0');

    const m = measure(html);
    expect(m.bars.map((b) => b.rank)).toEqual(['0', '1', '2', '3']);
    for (const b of m.bars) {
      expect(b.w, `rank ${b.rank}'s bar`).toBeGreaterThan(0);
      expect(b.h).toBeGreaterThan(0);
      expect(b.cls).toBe('bar o-ok');
    }
    expect(m.hosts).toBe(1);
    const measured = (JSON.parse(fs.readFileSync(json, 'utf8')) as { hosts: unknown[] }).hosts.length > 0;
    if (measured) {
      expect(new Set(m.cpu.map((c) => c.rank))).toEqual(new Set(['0', '1', '2', '3']));
      expect(new Set(m.mem.map((c) => c.rank))).toEqual(new Set(['0', '1', '2', '3']));
      for (const c of [...m.cpu, ...m.mem]) expect(c.w).toBeGreaterThan(0);
    } else {
      // this host cannot account (no cgroups): the page says so instead of drawing zeros
      expect(dom).toContain('unavailable: the job ran without isolation');
    }

    const shot = screenshot(file);
    expect(shot.size, 'a blank page').toBeGreaterThan(10);
    expect(shot.get(OK) ?? 0, 'green rank bars painted').toBeGreaterThan(1000);
  });

  it('a failed job: outcome colours, the exit status, the escaped command line; an existing file becomes 0600', async () => {
    const file = path.join(dir, 'failed.html');
    fs.writeFileSync(file, 'old', { mode: 0o644 });
    fs.chmodSync(file, 0o644);
    const burn = 'i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 20';
    const r = await run(['--report-html', file, '-n', '3', 'sh', '-c', burn, ':', '-n', '1', 'sh', '-c', 'sleep 0.5; exit 3', '<b>x</b>']);
    expect(r.code).toBe(3);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const html = fs.readFileSync(file, 'utf8');
    const m = measure(html);
    expect(m.bars).toHaveLength(4);
    for (const b of m.bars) expect(b.w).toBeGreaterThan(0);
    expect(m.bars.slice(0, 3).map((b) => b.cls)).toEqual(['bar o-signaled', 'bar o-signaled', 'bar o-signaled']);
    expect(m.bars[3]?.cls).toBe('bar o-failed first');
    expect(m.command).toContain("'<b>x</b>'"); // shown as text, not markup
    const dom = browse(['--dump-dom'], file);
    expect(dom).toContain('exit status 3');
    expect(dom).toContain('rank 3 on');
    expect(dom).not.toContain('<b>x</b>');

    const shot = screenshot(file);
    expect(shot.get(FAILED) ?? 0, 'the failed rank in red').toBeGreaterThan(1000);
    expect(shot.get(SIGNALED) ?? 0, 'the terminated ranks in orange').toBeGreaterThan(1000);
    expect(shot.get(OK) ?? 0).toBe(0);
  });

  it('a report that cannot be written is one line on stderr; the job status is kept', async () => {
    const r = await run(['--report-html', path.join(dir, 'no', 'such', 'dir.html'), '-n', '1', 'true']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^tsmpiexec: cannot write the HTML report \(.*dir\.html\): ENOENT$/m);
  });
});
