// One host's PMIx server for one job: the native helper (native/pmix-server.c, linked with libpmix) started by
// the host proxy, and the proxy's half of their conversation (docs/pmix.md: one line per message over the
// helper's stdin and stdout). The helper hands out each local rank's PMIx environment; its upcalls come here
// and go through the same PmiUpstream as PMI-1: a fence is one barrier of the job's KVS group in which every
// host puts its fence blob (base64) under its own key, so fences work across hosts and through the proxy tree
// exactly as PMI barriers do; publish/lookup/unpublish use the job's name service.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { socketBaseCandidates } from '../pmi/endpoint.js';
import type { PmiUpstream } from '../pmi/types.js';
import { assertPrivateDir } from '../util/private-dir.js';
import type { PmixJob } from './types.js';

/** How long the helper may take to register the job and hand out the environments. */
const START_TIMEOUT_MS = 30_000;
/** How long the helper gets to finalize once told to stop, before SIGKILL. */
const STOP_GRACE_MS = 3000;

export interface PmixHooks {
  upstream: PmiUpstream;
  /** The job's KVS group: its barrier carries the fences. */
  kvsname: string;
  connected(rank: number): void;
  finalized(rank: number): void;
  aborted(rank: number, code: number, message: string): void;
  /** The helper ended or broke while the job ran: one line. */
  failed(message: string): void;
  /** A request refused with a reason the user should see (MPI_Comm_spawn over PMIx): one line. */
  refused?(message: string): void;
  debug?(line: string): void;
}

const b64 = (s: string): string => (s === '' ? '-' : Buffer.from(s, 'utf8').toString('base64'));
const unb64 = (s: string): string => (s === '-' ? '' : Buffer.from(s, 'base64').toString('utf8'));

/** The helper's arguments for this job (see the usage line in native/pmix-server.c). */
export function helperArgs(dir: string, job: PmixJob): string[] {
  return [dir, job.nspace, String(job.nodeIndex), String(job.universeSize), job.nodes.join(','), job.nodeRanks.map((r) => r.join(',')).join(';'), job.appnums.join(',')];
}

/** A 0700 directory for the server's rendezvous files, outside the ranks' private /tmp where one exists. */
function makeServerDir(): string {
  const errors: string[] = [];
  for (const base of socketBaseCandidates(process.env)) {
    try {
      const dir = fs.mkdtempSync(path.join(base, `tsmpi-pmix-${process.pid}-`));
      fs.chmodSync(dir, 0o700);
      assertPrivateDir(dir);
      return dir;
    } catch (e) {
      errors.push(`${base}: ${(e as Error).message}`);
    }
  }
  throw new Error(`no private directory for the PMIx server (${errors.join('; ')})`);
}

export class PmixHelper {
  private readonly envs = new Map<number, Record<string, string>>();
  private closing = false;
  private exited: Promise<void>;
  private lastStderr = '';

  private constructor(
    private readonly child: ChildProcess,
    readonly dir: string,
    private readonly job: PmixJob,
    private readonly hooks: PmixHooks,
  ) {
    this.exited = new Promise((resolve) => child.once('close', () => resolve()));
  }

  /** Starts the helper; resolves once it registered the job and gave every local rank its environment. */
  static start(file: string, job: PmixJob, hooks: PmixHooks): Promise<PmixHelper> {
    const dir = makeServerDir();
    let child: ChildProcess;
    try {
      child = spawn(file, helperArgs(dir, job), {
        stdio: ['pipe', 'pipe', 'pipe'],
        // the key-value store in the server's own memory only: the ranks need no file of it (they may not
        // even see the directory, from a private /tmp), and nothing goes to /dev/shm
        env: { ...process.env, PMIX_MCA_gds: 'hash', PMIX_MCA_ptl_tcp_disable_ipv6: '1' },
      });
    } catch (e) {
      fs.rmSync(dir, { recursive: true, force: true });
      return Promise.reject(e as Error);
    }
    const h = new PmixHelper(child, dir, job, hooks);
    return h.handshake();
  }

  private handshake(): Promise<PmixHelper> {
    const { child, hooks } = this;
    child.stdin?.on('error', () => {
      /* the helper went away: its exit says why */
    });
    const err = readline.createInterface({ input: child.stderr as NodeJS.ReadableStream });
    err.on('line', (l) => {
      this.lastStderr = l;
      hooks.debug?.(`pmix-server: ${l}`);
    });
    const out = readline.createInterface({ input: child.stdout as NodeJS.ReadableStream });
    return new Promise<PmixHelper>((resolve, reject) => {
      let ready = false;
      const timer = setTimeout(() => {
        if (!ready) {
          child.kill('SIGKILL');
          reject(new Error(`the PMIx server did not start within ${START_TIMEOUT_MS / 1000} s`));
        }
      }, START_TIMEOUT_MS);
      child.once('error', (e) => {
        clearTimeout(timer);
        void this.remove();
        if (!ready) reject(e);
      });
      child.once('close', (code, sig) => {
        clearTimeout(timer);
        void this.remove();
        const why = `the PMIx server ended (${sig ?? `status ${String(code)}`})${this.lastStderr ? `: ${this.lastStderr}` : ''}`;
        if (!ready) reject(new Error(why));
        else if (!this.closing) hooks.failed(why);
      });
      out.on('line', (line) => {
        const w = line.split(' ');
        if (!ready) {
          if (w[0] === 'ENV') {
            const env: Record<string, string> = {};
            for (const kv of unb64(w[2] ?? '-').split('\0')) {
              const eq = kv.indexOf('=');
              if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
            }
            this.envs.set(Number(w[1]), env);
            return;
          }
          if (w[0] === 'READY') {
            ready = true;
            clearTimeout(timer);
            resolve(this);
            return;
          }
          if (w[0] === 'FAIL') {
            this.lastStderr = unb64(w[1] ?? '-');
            return;
          }
        }
        this.message(w);
      });
    });
  }

  /** The PMIx variables rank `rank` of the job must start with. */
  envOf(rank: number): Record<string, string> {
    return this.envs.get(rank) ?? {};
  }

  private send(line: string): void {
    const s = this.child.stdin;
    if (s && !s.destroyed && !this.closing) s.write(`${line}\n`);
  }

  private message(w: string[]): void {
    const { hooks } = this;
    const [verb, a = '', b = '', c = ''] = w;
    switch (verb) {
      case 'CONNECTED':
        hooks.connected(Number(a));
        return;
      case 'FINALIZED':
        hooks.finalized(Number(a));
        return;
      case 'ABORT':
        hooks.aborted(Number(a), Number(b), unb64(c));
        return;
      case 'FENCE':
        this.fence(a, b);
        return;
      case 'PUBLISH':
        void this.publish(a, w.slice(2));
        return;
      case 'UNPUBLISH':
        void this.unpublish(a, w.slice(2));
        return;
      case 'LOOKUP':
        void this.lookup(a, w.slice(2));
        return;
      case 'SPAWN':
        this.spawn(a, Number(b), w.slice(3));
        return;
      case 'FAIL':
        hooks.failed(`the PMIx server failed: ${unb64(a)}`);
        return;
      default:
        hooks.debug?.(`pmix-server: unknown message ${verb ?? ''}`);
    }
  }

  /** One fence: this host's blob goes into the job's barrier; every host's blob comes back. */
  private fence(seq: string, blob: string): void {
    const prefix = `pmix.fence.${seq}.`;
    this.hooks.upstream.barrier(this.hooks.kvsname, [[`${prefix}${this.job.nodeIndex}`, blob]]).then(
      (pairs) => {
        const blobs = pairs.filter(([k]) => k.startsWith(prefix)).map(([, v]) => v);
        this.send(`FENCED ${seq} ok${blobs.map((v) => ` ${v}`).join('')}`);
      },
      (e: unknown) => {
        this.hooks.debug?.(`PMIx fence ${seq}: ${e instanceof Error ? e.message : String(e)}`);
        this.send(`FENCED ${seq} fail`);
      },
    );
  }

  private async publish(id: string, words: string[]): Promise<void> {
    let status = 'ok';
    try {
      for (let i = 0; i + 1 < words.length; i += 2) {
        if (!(await this.hooks.upstream.publish(unb64(words[i] ?? '-'), unb64(words[i + 1] ?? '-')))) {
          status = 'dup';
          break;
        }
      }
    } catch {
      status = 'fail';
    }
    this.send(`DONE ${id} ${status}`);
  }

  private async unpublish(id: string, words: string[]): Promise<void> {
    let status = 'ok';
    try {
      for (const k of words) if (!(await this.hooks.upstream.unpublish(unb64(k)))) status = 'notfound';
    } catch {
      status = 'fail';
    }
    this.send(`DONE ${id} ${status}`);
  }

  private async lookup(id: string, words: string[]): Promise<void> {
    const found: string[] = [];
    try {
      for (const k of words) {
        const v = await this.hooks.upstream.lookup(unb64(k));
        if (v !== undefined) found.push(k, b64(v));
      }
    } catch {
      this.send(`FOUND ${id} fail`);
      return;
    }
    this.send(found.length > 0 ? `FOUND ${id} ok ${found.join(' ')}` : `FOUND ${id} notfound`);
  }

  /**
   * MPI_Comm_spawn (PMIx_Spawn): refused with one line, and the spawner's MPI_Comm_spawn returns an error.
   * Open MPI 4.1 would next connect parent and children with PMIx_Connect across the two namespaces, which
   * this server does not do either; docs/pmix.md says what doing it takes.
   */
  private spawn(id: string, rank: number, words: string[]): void {
    const apps: string[] = [];
    for (let i = 0; i + 1 < words.length; i += 2) apps.push(`${words[i + 1] ?? '?'} x ${unb64(words[i] ?? '-')}`);
    const why = 'MPI_Comm_spawn is not supported over PMIx';
    const line = `rank ${rank}: ${why} (asked for ${apps.join(', ')}): the spawn returns an error (docs/pmix.md)`;
    if (this.hooks.refused) this.hooks.refused(line);
    else this.hooks.debug?.(line);
    this.send(`SPAWNED ${id} fail ${b64(why)}`);
  }

  private async remove(): Promise<void> {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** The job is over here: the helper finalizes libpmix and exits (SIGKILL after a grace); its directory goes. */
  async close(): Promise<void> {
    if (this.closing) return this.exited;
    this.closing = true;
    const { child } = this;
    if (child.exitCode === null && child.signalCode === null) {
      child.stdin?.end();
      const t = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      await this.exited;
      clearTimeout(t);
    }
    await this.remove();
  }
}
