// The proxy's half of the PMIx helper's line protocol (src/pmix/helper.ts, docs/pmix.md), against a stand-in
// helper: a Node script that speaks the same lines as native/pmix-server.c. Environments come back per rank,
// a fence becomes one barrier with this host's blob under its own key and returns every host's blob, the name
// service is reached for publish/lookup/unpublish, and the server's directory is gone after close().
import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { helperArgs, PmixHelper } from '../../src/pmix/helper.js';
import type { PmiUpstream } from '../../src/pmi/types.js';
import type { PmixJob } from '../../src/pmix/types.js';

const JOB: PmixJob = { nspace: 'kvs_1', nodes: ['a', 'b'], nodeRanks: [[0, 2], [1, 3]], nodeIndex: 1, appnums: [0, 0, 1, 1], universeSize: 4 };

// Prints its arguments' job map back as ENV lines, then plays a script of requests and echoes every answer
// it gets on stderr as "GOT <line>", which the test reads through the debug hook.
const STAND_IN = `#!/usr/bin/env node
const rl = require('node:readline').createInterface({ input: process.stdin });
const [dir, nspace, nodeid, , , map] = process.argv.slice(2);
const b64 = (s) => (s === '' ? '-' : Buffer.from(s).toString('base64'));
for (const r of map.split(';')[Number(nodeid)].split(',')) console.log('ENV ' + r + ' ' + b64('PMIX_RANK=' + r + '\\0PMIX_NAMESPACE=' + nspace + '\\0DIR=' + dir));
console.log('READY');
console.log('CONNECTED 1');
console.log('FENCE 1 ' + b64('blob-of-b'));
console.log('PUBLISH 7 ' + b64('svc') + ' ' + b64('port 1'));
rl.on('line', (l) => {
  process.stderr.write('GOT ' + l + '\\n');
  if (l.startsWith('DONE 7')) console.log('LOOKUP 8 ' + b64('svc') + ' ' + b64('nothing'));
  if (l.startsWith('FOUND 8')) console.log('UNPUBLISH 9 ' + b64('svc'));
  if (l.startsWith('DONE 9')) { console.log('FINALIZED 1'); console.log('ABORT 3 5 ' + b64('bye')); }
});
rl.on('close', () => process.exit(0));
`;

let tmp: string | undefined;
afterEach(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  tmp = undefined;
});

describe('the PMIx helper, proxy side', () => {
  it('passes the job map on the command line as the helper reads it', () => {
    expect(helperArgs('/d', JOB)).toEqual(['/d', 'kvs_1', '1', '4', 'a,b', '0,2;1,3', '0,0,1,1']);
  });

  it('hands out environments, carries fences through the barrier and names through the name service', async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsmpiexec-pmixh-'));
    const file = path.join(tmp, 'stand-in');
    fs.writeFileSync(file, STAND_IN, { mode: 0o755 });
    const names = new Map<string, string>();
    const barriers: Array<{ kvs: string; puts: Array<[string, string]> }> = [];
    const upstream: PmiUpstream = {
      barrier: (kvs, puts) => {
        barriers.push({ kvs, puts });
        // the other host's blob, and a PMI-1 pair of the same epoch that is none of the fence's business
        return Promise.resolve([['pmix.fence.1.0', Buffer.from('blob-of-a').toString('base64')], ...puts, ['other', 'x']]);
      },
      publish: (s, p) => Promise.resolve(names.has(s) ? false : (names.set(s, p), true)),
      unpublish: (s) => Promise.resolve(names.delete(s)),
      lookup: (s) => Promise.resolve(names.get(s)),
      spawn: () => Promise.resolve({ ok: false, error: 'no' }),
    };
    const got: string[] = [];
    const events: string[] = [];
    let done!: () => void;
    const aborted = new Promise<void>((r) => (done = r));
    const h = await PmixHelper.start(file, JOB, {
      upstream,
      kvsname: 'kvs_1',
      connected: (r) => events.push(`connected ${r}`),
      finalized: (r) => events.push(`finalized ${r}`),
      aborted: (r, code, msg) => {
        events.push(`aborted ${r} ${code} ${msg}`);
        done();
      },
      failed: (m) => events.push(`failed ${m}`),
      debug: (l) => {
        const m = /^pmix-server: GOT (.*)$/.exec(l);
        if (m?.[1]) got.push(m[1]);
      },
    });
    expect(h.envOf(1)).toEqual({ PMIX_RANK: '1', PMIX_NAMESPACE: 'kvs_1', DIR: h.dir });
    expect(h.envOf(3).PMIX_RANK).toBe('3');
    expect(h.envOf(0)).toEqual({});
    expect(fs.statSync(h.dir).mode & 0o777).toBe(0o700);
    await aborted;
    const dir = h.dir;
    // the answers echoed on stderr are all read once the helper is gone
    await h.close();
    expect(fs.existsSync(dir)).toBe(false);
    expect(events).toEqual(['connected 1', 'finalized 1', 'aborted 3 5 bye']);
    expect(barriers).toEqual([{ kvs: 'kvs_1', puts: [['pmix.fence.1.1', Buffer.from('blob-of-b').toString('base64')]] }]);
    const b = (s: string): string => Buffer.from(s).toString('base64');
    expect(got).toContain(`FENCED 1 ok ${b('blob-of-a')} ${b('blob-of-b')}`);
    expect(got).toContain('DONE 7 ok');
    expect(got).toContain(`FOUND 8 ok ${b('svc')} ${b('port 1')}`);
    expect(got).toContain('DONE 9 ok');
    expect(names.size).toBe(0);
  });

  it('a helper that ends before READY: the start fails with its last line, and its directory goes', async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsmpiexec-pmixh-'));
    const file = path.join(tmp, 'broken');
    fs.writeFileSync(file, `#!/bin/sh\necho "FAIL $(printf 'PMIx_server_init: boom' | base64)"\nexit 1\n`, { mode: 0o755 });
    await expect(PmixHelper.start(file, JOB, { upstream: {} as PmiUpstream, kvsname: 'k', connected: () => {}, finalized: () => {}, aborted: () => {}, failed: () => {} })).rejects.toThrow(
      /the PMIx server ended \(status 1\): PMIx_server_init: boom/,
    );
  });
});
