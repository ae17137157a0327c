// A remote proxy's own exit status after a normal job. The controller sends 'shutdown' and closes the channel at
// once; the proxy used to take the closed channel for a vanished controller and exit 1, half-way through its
// orderly close (srun reports such a step as failed). Remote proxies run here through a stand-in for ssh that runs
// the command on this host; the real ssh test hosts are in test/e2e/multi-host.test.ts.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { killLive, leftovers, runTsmpiexec } from '../helpers/run.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsmpi-proxy-exit-'));
const FAKE_SSH = path.join(dir, 'ssh');
const WRAP = path.join(dir, 'proxy');
const LOG = path.join(dir, 'exits');
// ssh HOST COMMAND: drop the host, run the command here
fs.writeFileSync(FAKE_SSH, '#!/bin/sh\nwhile [ $# -gt 0 ]; do case "$1" in -o) shift 2;; -*) shift;; *) break;; esac; done\nshift\nexec /bin/sh -c "$*"\n', { mode: 0o700 });
// the proxy command: the real proxy, then its exit status into the log
fs.writeFileSync(WRAP, `#!/bin/sh\n"${process.execPath}" "${path.resolve('bin/tsmpiexec.js')}" "$@"\necho "$?" >> ${LOG}\n`, { mode: 0o700 });

let marker: string | undefined;
afterEach(async () => {
  killLive();
  if (marker !== undefined) expect(await leftovers(marker)).toEqual([]);
  marker = undefined;
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The exit statuses the wrapper logged, once `count` proxies have logged theirs (they exit after the controller). */
async function exits(count: number): Promise<string[]> {
  for (let i = 0; i < 100; i++) {
    const lines = fs.existsSync(LOG) ? fs.readFileSync(LOG, 'utf8').trim().split('\n').filter(Boolean) : [];
    if (lines.length >= count) return lines;
    await new Promise((r) => setTimeout(r, 50));
  }
  return fs.existsSync(LOG) ? fs.readFileSync(LOG, 'utf8').trim().split('\n') : [];
}

describe('a remote proxy after a normal job', () => {
  it('reports its hosts usage and exits 0', async () => {
    fs.rmSync(LOG, { force: true });
    const report = path.join(dir, 'report.json');
    const r = await runTsmpiexec(
      ['--launcher', 'ssh', '--launcher-exec', FAKE_SSH, '--proxy-cmd', WRAP, '-hosts', 'h1,h2', '-ppn', '2', '-n', '4', '--report-json', report, 'sh', '-c', 'sleep 0.2; echo done'],
      {},
    );
    marker = r.marker;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(['done', 'done', 'done', 'done']);
    const hosts = (JSON.parse(fs.readFileSync(report, 'utf8')) as { hosts: Array<{ host: string }> }).hosts.map((h) => h.host).sort();
    expect(hosts).toEqual(['h1', 'h2']);
    expect(await exits(2)).toEqual(['0', '0']);
  });
});
