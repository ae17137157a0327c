// End to end across hosts: a test bed of real sshd hosts in network namespaces (test/testbed), tsmpiexec
// run on the login host h0, one proxy per host started over ssh, real MPICH programs. Every process of a
// job carries the test's marker in its environment, so leftovers are found on every host (one PID space).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FIX, killLive, leftovers, runTsmpiexec, type RunOptions, type RunResult } from '../helpers/run.js';
import { bedUp, type Bed } from '../helpers/testbed.js';

/** A rank that prints its proxy's pid ("ppid N") and sleeps: its parent is the proxy, or the native helper that
 *  started it in a batch (proxy/rank-batch.ts), whose parent is the proxy. */
const PRINT_PROXY_PID =
  'p=$PPID; case "$(cat /proc/$p/comm)" in tsmpiexec-helpe*) p=$(ps -o ppid= -p $p | tr -d " ");; esac; echo "ppid $p"; sleep 60';

let bed: Bed;
let lastMarker: string | undefined;
const fx = (name: string): string => path.join(FIX, name);

async function run(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await runTsmpiexec(['-launcher-exec', bed.ssh, ...args], { wrap: bed.onLogin, timeoutMs: 60_000, ...opts });
  lastMarker = r.marker;
  return r;
}

beforeAll(() => {
  if (!fs.existsSync(fx('hello'))) throw new Error(`MPI fixtures are missing in ${FIX}`);
  bed = bedUp(4, 'tsme');
});

afterAll(() => {
  bed?.down();
});

afterEach(async () => {
  killLive();
  if (lastMarker) {
    const left = await leftovers(lastMarker, 10_000);
    lastMarker = undefined;
    expect(left, 'processes of the job left behind on some host').toEqual([]);
  }
});

describe('jobs across hosts', () => {
  it('runs MPI hello + allreduce across 4 hosts, ranks placed round-robin', async () => {
    const r = await run(['-hosts', 'h1,h2,h3,h4', '-n', '8', fx('hello')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (let i = 0; i < 8; i++) expect(r.stdout).toContain(`hello from rank ${i} of 8 on h${(i % 4) + 1} (allreduce sum 28, expected 28)`);
  });

  it('gives ranks on remote hosts argv[0] as typed (node, not /usr/bin/node); -prepend-pattern names host and proxy', async () => {
    const r = await run(['-prepend-pattern', '%r@%h/%p: ', '-hosts', 'h1,h2', '-n', '2', 'node', '-e', 'console.log(`${process.argv0} on ${require("os").hostname()}`)']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n').sort()).toEqual(['0@h1/0: node on h1', '1@h2/1: node on h2']);
  });

  it('passes 1 MiB messages around a ring spanning hosts', async () => {
    const r = await run(['-hosts', 'h1:2,h2:2', '-n', '4', fx('ring'), '2']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('ring: 4 ranks, 2 laps of 1048576 bytes, 0 bad');
  });

  it('gives every host the right local ranks and process mapping (host file forms)', async () => {
    const hf = path.join(bed.dir, 'hosts.test');
    fs.writeFileSync(hf, '# a host file in every form\nh1:2\n\nh2 slots=3   # Open MPI style\nh3\n');
    const r = await run(['-f', hf, '-l', '-n', '7', 'sh', '-c', 'echo "$(hostname) $MPI_LOCALRANKID/$MPI_LOCALNRANKS"']);
    expect(r.code).toBe(0);
    const want = ['[0] h1 0/3', '[1] h1 1/3', '[2] h2 0/3', '[3] h2 1/3', '[4] h2 2/3', '[5] h3 0/1', '[6] h1 2/3'];
    expect(r.stdout.trim().split('\n').sort()).toEqual(want.sort());
    const dry = await run(['--dry-run', '-f', hf, '-n', '7', 'x']);
    // nodes 0,0,1,1,1,2,0: MPICH's wrap-around makes the last triple implicit
    expect(dry.stdout).toContain('PMI_process_mapping=(vector,(0,1,2),(1,1,3),(2,1,1))');
  });

  it('labels output, and fills %h in output patterns with the host', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mh-out-'));
    try {
      const r = await run(['-hosts', 'h2,h3', '-n', '2', '-outfile-pattern', `${dir}/%h.%r`, 'hostname']);
      expect(r.code).toBe(0);
      expect(fs.readFileSync(`${dir}/h2.0`, 'utf8')).toBe('h2\n');
      expect(fs.readFileSync(`${dir}/h3.1`, 'utf8')).toBe('h3\n');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('sends stdin to rank 0 on a remote host with back-pressure', async () => {
    const data = Buffer.alloc(20 * 1024 * 1024, 7);
    for (let i = 0; i < data.length; i += 997) data[i] = i & 0xff;
    const md5 = createHash('md5').update(data).digest('hex');
    const r = await run(['-hosts', 'h3,h1', '-l', '-n', '2', 'md5sum'], { input: data });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`[0] ${md5}  -`);
    expect(r.stdout).toContain('[1] d41d8cd98f00b204e9800998ecf8427e  -');
  });

  it('MPI_Abort on one host ends the ranks on all hosts', async () => {
    const r = await run(['-hosts', 'h1,h2,h3', '-n', '6', fx('abort'), '9']);
    expect(r.code).toBe(9);
    expect(r.stderr).toMatch(/rank 1 on h2 called MPI_Abort with code 9/);
  });

  it('a failing rank on one host terminates the others and its code is the job\'s', async () => {
    const r = await run(['-hosts', 'h1,h2', '-n', '4', '-genv', 'FAIL_RANK', '3', fx('exitcode'), '5', '60']);
    expect(r.code, r.stderr).toBe(5);
    expect(r.stderr).toMatch(/rank 3 on h2 exited with code 5/);
  });

  it('forwards SIGTERM to ranks on every host; their last words arrive', async () => {
    let ready = 0;
    let sent = false;
    const r = await run(['-hosts', 'h1,h2,h3', '-n', '3', fx('sigrank')], {
      onStdout: (chunk, child) => {
        ready += (chunk.toString().match(/ready/g) ?? []).length;
        if (ready === 3 && !sent) {
          sent = true;
          child.kill('SIGTERM');
        }
      },
    });
    expect(sent).toBe(true);
    for (let i = 0; i < 3; i++) expect(r.stdout).toContain(`rank ${i} got signal 15`);
    expect(r.code).toBe(143);
  });
});

describe('MPI_Comm_spawn across hosts (Slurm libpmi2 PMI2_Job_Spawn)', () => {
  const children = (out: string): string[] => out.split('\n').filter((l) => l.startsWith('[1:')).sort();

  it('places the children over the job\'s hosts as the world ranks were, started by the remote proxies', async () => {
    const r = await run(['-hosts', 'h1,h2', '-l', '-n', '2', fx('pmi2spawn'), '4']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const kids = children(r.stdout);
    expect(kids).toHaveLength(4);
    for (let i = 0; i < 4; i++) expect(kids[i]).toMatch(new RegExp(`^\\[1:${i}\\] child ${i} of 4 on h${(i % 2) + 1}: appnum 0, jobid \\S+_spawn1, parent key parent-port-of-`));
    // the name service spans hosts and groups: child 0 on h1 found what parent 0 published
    expect(kids[0]).toMatch(/, looked up published-by-kvs_\S+$/);
  });

  it('info host puts every child on that host; through a launch tree too', async () => {
    const r = await run(['--tree-width', '2', '-hosts', 'h1,h2,h3,h4', '-l', '-n', '4', fx('pmi2spawn'), '3', 'h4']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const kids = children(r.stdout);
    expect(kids).toHaveLength(3);
    for (const k of kids) expect(k).toMatch(/ on h4: /);
  });

  it('a child failing on a remote host ends the job everywhere with its code', async () => {
    const r = await run(['-hosts', 'h1,h2', '-n', '2', '-genv', 'PMI2SPAWN_CHILD_FAIL', '1', fx('pmi2spawn'), '2']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/rank 1 of spawn 1 on h2:? exited with code 3/);
  });
});

describe('batch allocations on the test hosts (ssh launcher)', () => {
  it('takes hosts and -n from a PBS node file', async () => {
    const nodefile = path.join(bed.dir, 'pbs.nodes');
    fs.writeFileSync(nodefile, 'h1\nh1\nh2\nh2\n');
    const r = await run(['-l', fx('hello')], { env: { PBS_NODEFILE: nodefile, PBS_JOBID: '17.server' } });
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n').sort();
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^\[0\] hello from rank 0 of 4 on h1 /);
    expect(lines[1]).toMatch(/^\[1\] hello from rank 1 of 4 on h1 /);
    expect(lines[2]).toMatch(/^\[2\] hello from rank 2 of 4 on h2 /);
    expect(lines[3]).toMatch(/^\[3\] hello from rank 3 of 4 on h2 /);
  });

  it('takes hosts and -n from Slurm variables, started over ssh with -launcher ssh', async () => {
    const r = await run(['-launcher', 'ssh', '-l', fx('hello')], {
      env: { SLURM_JOB_ID: '42', SLURM_JOB_NODELIST: 'h[2-3]', SLURM_TASKS_PER_NODE: '2(x2)', SLURM_JOB_CPUS_PER_NODE: '2(x2)' },
    });
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n').sort();
    expect(lines).toHaveLength(4);
    expect(lines.filter((l) => / on h2 /.test(l))).toHaveLength(2);
    expect(lines.filter((l) => / on h3 /.test(l))).toHaveLength(2);
  });
});

describe('launch failures are bounded and name the host', () => {
  it('an unknown host: ssh\'s own error line, the launch-failure status, nothing left', async () => {
    const r = await run(['-hosts', 'h1,nosuchhost', '-n', '2', 'sleep', '30']);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/cannot start the proxy on nosuchhost: .*Could not resolve hostname nosuchhost/);
  });

  it('a host whose sshd is stopped', async () => {
    bed.script('stop-sshd', 'h3');
    try {
      const r = await run(['-hosts', 'h1,h3', '-n', '2', 'sleep', '30']);
      expect(r.code).toBe(125);
      expect(r.stderr).toMatch(/cannot start the proxy on h3: .*Connection refused/);
    } finally {
      bed.script('start-sshd', 'h3');
    }
  });

  it('a host without the proxy command (a missing tsmpiexec) is named', async () => {
    const r = await run(['--proxy-cmd', '/nonexistent/node /nonexistent/tsmpiexec.js', '-hosts', 'h1,h2', '-n', '2', 'true']);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/cannot start the proxy on h[12]: .*(not found|No such file)/);
  });
});

describe('faults mid-job', () => {
  it('a proxy killed with SIGKILL ends the job within seconds, naming the host', async () => {
    let killed = false;
    const r = await run(['-hosts', 'h1,h2', '-l', '-n', '4', 'sh', '-c', PRINT_PROXY_PID], {
      onStdout: (chunk) => {
        const m = /\[1\] ppid (\d+)/.exec(chunk.toString());
        if (m && !killed) {
          killed = true;
          process.kill(Number(m[1]), 'SIGKILL');
        }
      },
    });
    expect(killed).toBe(true);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/lost the proxy on h2/);
    expect(r.ms).toBeLessThan(30_000);
  });

  it('the controller killed with SIGKILL: every rank on every host is gone within 10 s', async () => {
    let ready = 0;
    let marker = '';
    const r = await run(['-hosts', 'h1,h2,h3', '-n', '6', 'sh', '-c', 'echo up; sleep 120'], {
      onSpawn: () => undefined,
      onStdout: (chunk, child) => {
        ready += (chunk.toString().match(/up/g) ?? []).length;
        if (ready === 6) {
          ready++;
          child.kill('SIGKILL');
        }
      },
    });
    marker = r.marker;
    expect(r.signal).toBe('SIGKILL');
    lastMarker = undefined;
    const left = await leftovers(marker, 10_000);
    expect(left, 'ranks that outlived a SIGKILLed controller').toEqual([]);
  });
});

describe('launch tree (--tree-width)', () => {
  it('starts deeper proxies from proxies, not from the login host, and the job runs', async () => {
    let launchers = '';
    const r = await run(['--tree-width', '2', '-hosts', 'h1,h2,h3,h4', '-l', '-n', '4', 'sh', '-c', 'echo "$(hostname) up"; sleep 1.5'], {
      onStdout: () => {
        if (launchers) return;
        // the ssh clients that started h3 and h4: their parent must be a proxy (on h1), not the controller
        launchers = execFileSync('ps', ['-eo', 'pid,ppid,args'], { encoding: 'utf8' })
          .split('\n')
          .filter((l) => / ssh .* h[34] exec /.test(l))
          .map((l) => {
            const ppid = l.trim().split(/\s+/)[1];
            return fs.readFileSync(`/proc/${ppid}/cmdline`, 'utf8').replace(/\0/g, ' ');
          })
          .join('\n');
      },
    });
    expect(r.code).toBe(0);
    for (let i = 1; i <= 4; i++) expect(r.stdout).toContain(`h${i} up`);
    expect(launchers.split('\n')).toHaveLength(2);
    for (const l of launchers.split('\n')) expect(l).toMatch(/tsmpiexec\.js proxy/);
  });

  it('an unknown host deep in the tree is named with ssh\'s own error line', async () => {
    const r = await run(['--tree-width', '2', '-hosts', 'h1,h2,nosuchhost,h4', '-n', '4', 'sleep', '30']);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/cannot start the proxy on nosuchhost: .*Could not resolve hostname nosuchhost/);
  });

  it('an intermediate proxy killed mid-job takes its subtree down and ends the job, naming the hosts', async () => {
    let killed = false;
    const r = await run(['--tree-width', '2', '-hosts', 'h1,h2,h3,h4', '-l', '-n', '4', 'sh', '-c', PRINT_PROXY_PID], {
      onStdout: (chunk) => {
        const m = /\[0\] ppid (\d+)/.exec(chunk.toString());
        if (m && !killed) {
          killed = true;
          process.kill(Number(m[1]), 'SIGKILL');
        }
      },
    });
    expect(killed).toBe(true);
    expect(r.code).toBe(125);
    expect(r.stderr.split('\n')[0]).toMatch(/lost the proxy on h1/);
    expect(r.stderr).toMatch(/rank 2 on h3: lost/);
  });
});

describe('the channel', () => {
  it('starts proxies only over ssh: no TCP port is listening on any host while the job runs', async () => {
    let seen = '';
    const r = await run(['-hosts', 'h1,h2', '-n', '2', 'sh', '-c', 'echo up; sleep 2'], {
      onStdout: () => {
        if (seen) return;
        seen = ['h0', 'h1', 'h2']
          .map((h) => execFileSync('bash', [...bed.onLogin.slice(1, 3), h, '--dir', bed.dir, '--', 'ss', '-ltnH'], { encoding: 'utf8' }))
          .join('')
          .split('\n')
          .filter((l) => l.trim() !== '' && !/:22\s/.test(l))
          .join('\n') || 'none';
      },
    });
    expect(r.code).toBe(0);
    expect(seen).toBe('none');
  });
});

// Each host's proxy binds its own ranks from its own topology (the bed's hosts share this machine's CPUs, so
// each host's two ranks get the same two CPUs): read from each rank's /proc/self/status.
describe('binding per host', () => {
  const usable = (fs.readFileSync('/proc/self/status', 'utf8').match(/^Cpus_allowed_list:\s*(\S+)/m)?.[1] ?? '').split(',');
  it.skipIf(usable.join(',') !== '0-1')('-hosts h1,h2 -n 4 -bind-to core: each host\'s ranks get CPUs 0 and 1 of that host; --report-bindings names the hosts (skipped unless CPUs 0-1 are usable)', async () => {
    const r = await run(['-hosts', 'h1,h2', '-n', '4', '-bind-to', 'core', '--report-bindings', '-l', 'sh', '-c', 'echo "$(hostname) $(grep Cpus_allowed_list /proc/self/status | cut -f2)"']);
    expect(r.code, r.stderr).toBe(0);
    const byHost: Record<string, string[]> = {};
    const rankHost: Record<number, string> = {};
    for (const m of r.stdout.matchAll(/^\[([0-9]+)\] (h[0-9]+) (\S+)$/gm)) {
      (byHost[m[2] ?? ''] ??= []).push(m[3] ?? '');
      rankHost[Number(m[1])] = m[2] ?? '';
    }
    expect(Object.keys(byHost).sort()).toEqual(['h1', 'h2']);
    for (const h of ['h1', 'h2']) expect(byHost[h]?.sort(), h).toEqual(['0', '1']);
    for (let rank = 0; rank < 4; rank++) expect(r.stderr).toMatch(new RegExp(`rank ${String(rank)} on ${rankHost[rank] ?? '?'}: CPUs [01]$`, 'm'));
  });
});
