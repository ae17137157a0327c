// A small PMI-1 client over any connected byte stream, for `tsmpiexec pmi-check` and tests: it speaks the same
// lines MPICH 4.0.2's simple PMI does (pmi-wire.md §3–§4), including the PMI_PORT initack handshake and the
// per-segment `mcmd=spawn` form, so it exercises the server the way a real rank does.
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { formatV1, isV1Safe, parseV1Line, type V1Message } from './wire1.js';

export class PmiClientError extends Error {
  constructor(
    message: string,
    readonly reply?: V1Message,
  ) {
    super(message);
    this.name = 'PmiClientError';
  }
}

export interface PmiClientOptions {
  /** Reject a request whose reply takes longer than this (ms) and close the client. Default: wait forever. */
  timeoutMs?: number;
}

export interface PmiSpawnCommand {
  command: string;
  args?: string[];
  maxprocs: number;
  info?: Array<[string, string]>;
}

/** One PMI-1 conversation. Requests are serialized: each waits for the previous reply, as MPICH's client does. */
export class PmiClient {
  rank = 0;
  size = 1;
  private readonly lines: string[] = [];
  private readonly readers: Array<{ resolve: (l: string) => void; reject: (e: Error) => void }> = [];
  private ended: Error | undefined;
  private partial = '';
  private readonly text = new StringDecoder('utf8');
  private chain: Promise<unknown> = Promise.resolve();
  private readonly timeoutMs: number | undefined;

  constructor(
    private readonly stream: Duplex,
    opts: PmiClientOptions = {},
  ) {
    this.timeoutMs = opts.timeoutMs;
    stream.on('data', (chunk: Buffer | string) => this.onData(typeof chunk === 'string' ? chunk : this.text.write(chunk)));
    stream.on('end', () => this.onEnd(new PmiClientError('PMI server closed the connection')));
    stream.on('close', () => this.onEnd(new PmiClientError('PMI connection closed')));
    stream.on('error', (e: Error) => this.onEnd(new PmiClientError(`PMI connection error: ${e.message}`)));
  }

  private onData(s: string): void {
    this.partial += s;
    let nl: number;
    while ((nl = this.partial.indexOf('\n')) >= 0) {
      const line = this.partial.slice(0, nl);
      this.partial = this.partial.slice(nl + 1);
      const r = this.readers.shift();
      if (r) r.resolve(line);
      else this.lines.push(line);
    }
  }

  private onEnd(e: Error): void {
    if (this.ended) return;
    this.ended = e;
    for (const r of this.readers.splice(0)) r.reject(e);
  }

  private readLine(): Promise<string> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    if (this.ended) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => this.readers.push({ resolve, reject }));
  }

  private write(data: string): Promise<void> {
    if (this.ended) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => {
      this.stream.write(data, (e) => (e ? reject(new PmiClientError(`PMI write failed: ${e.message}`)) : resolve()));
    });
  }

  /** Run one exchange after the previous one finished, with the optional timeout. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    if (this.timeoutMs === undefined) return run;
    const ms = this.timeoutMs;
    return new Promise<T>((resolve, reject) => {
      // A late reply would be read as the answer to the next request, so a timeout ends the conversation.
      const t = setTimeout(() => {
        reject(new PmiClientError(`no PMI reply within ${ms} ms; connection closed`));
        this.close();
      }, ms);
      run.then(
        (v) => {
          clearTimeout(t);
          resolve(v);
        },
        (e: unknown) => {
          clearTimeout(t);
          reject(e);
        },
      );
    });
  }

  private async readReply(expect: string): Promise<V1Message> {
    const line = await this.readLine();
    const msg = parseV1Line(line);
    if (!msg || msg.cmd !== expect) {
      throw new PmiClientError(`expected cmd=${expect}, got ${JSON.stringify(line.slice(0, 120))}`, msg);
    }
    return msg;
  }

  /** Send a line and read the reply named `expect`; a reply rc other than 0 throws unless `allowFail`. */
  private request(line: string, expect: string, allowFail = false): Promise<V1Message> {
    return this.serial(async () => {
      await this.write(line);
      const msg = await this.readReply(expect);
      const rc = msg.fields.get('rc');
      if (!allowFail && rc !== undefined && rc !== '0') {
        throw new PmiClientError(`${expect}: rc=${rc} ${msg.fields.get('msg') ?? ''}`.trimEnd(), msg);
      }
      return msg;
    });
  }

  /** PMI_PORT handshake: `initack pmiid=` then the initack line and three `set` lines, in that order. */
  initack(pmiId: number): Promise<{ rank: number; size: number }> {
    return this.serial(async () => {
      await this.write(formatV1('initack', [['pmiid', pmiId]]));
      await this.readReply('initack');
      const size = await this.readReply('set');
      const rank = await this.readReply('set');
      await this.readReply('set');
      const s = Number(size.fields.get('size'));
      const r = Number(rank.fields.get('rank'));
      if (!Number.isInteger(s) || !Number.isInteger(r)) throw new PmiClientError('initack: bad set lines');
      this.size = s;
      this.rank = r;
      return { rank: r, size: s };
    });
  }

  async init(): Promise<{ version: number; subversion: number }> {
    const m = await this.request(formatV1('init', [['pmi_version', 1], ['pmi_subversion', 1]]), 'response_to_init');
    return { version: Number(m.fields.get('pmi_version')), subversion: Number(m.fields.get('pmi_subversion')) };
  }

  async getMaxes(): Promise<{ kvsnameMax: number; keylenMax: number; vallenMax: number }> {
    const m = await this.request(formatV1('get_maxes'), 'maxes');
    return {
      kvsnameMax: Number(m.fields.get('kvsname_max')),
      keylenMax: Number(m.fields.get('keylen_max')),
      vallenMax: Number(m.fields.get('vallen_max')),
    };
  }

  async getAppnum(): Promise<number> {
    return Number((await this.request(formatV1('get_appnum'), 'appnum')).fields.get('appnum'));
  }

  async getMyKvsname(): Promise<string> {
    return (await this.request(formatV1('get_my_kvsname'), 'my_kvsname')).fields.get('kvsname') ?? '';
  }

  async getUniverseSize(): Promise<number> {
    return Number((await this.request(formatV1('get_universe_size'), 'universe_size')).fields.get('size'));
  }

  async put(kvsname: string, key: string, value: string): Promise<void> {
    checkToken('value', value);
    await this.request(formatV1('put', [['kvsname', kvsname], ['key', key], ['value', value]]), 'put_result');
  }

  /** undefined when the server reports the key missing (any nonzero rc). */
  async get(kvsname: string, key: string): Promise<string | undefined> {
    const m = await this.request(formatV1('get', [['kvsname', kvsname], ['key', key]]), 'get_result', true);
    return m.fields.get('rc') === '0' ? (m.fields.get('value') ?? '') : undefined;
  }

  async barrier(): Promise<void> {
    await this.request(formatV1('barrier_in'), 'barrier_out');
  }

  /** false: already published. */
  async publish(service: string, port: string): Promise<boolean> {
    checkToken('port', port);
    const m = await this.request(formatV1('publish_name', [['service', service], ['port', port]]), 'publish_result', true);
    return m.fields.get('rc') === '0';
  }

  /** false: not found. */
  async unpublish(service: string): Promise<boolean> {
    const m = await this.request(formatV1('unpublish_name', [['service', service]]), 'unpublish_result', true);
    return m.fields.get('rc') === '0';
  }

  async lookup(service: string): Promise<string | undefined> {
    const m = await this.request(formatV1('lookup_name', [['service', service]]), 'lookup_result', true);
    return m.fields.get('rc') === '0' ? (m.fields.get('port') ?? '') : undefined;
  }

  /** MPI_Comm_spawn_multiple the 4.0.2 way: one `mcmd=spawn` segment per command, preputs in every segment. */
  async spawn(commands: PmiSpawnCommand[], preput: Array<[string, string]> = []): Promise<void> {
    let out = '';
    commands.forEach((c, i) => {
      const args = c.args ?? [];
      const info = c.info ?? [];
      const lines = ['mcmd=spawn', `nprocs=${c.maxprocs}`, `execname=${c.command}`, `totspawns=${commands.length}`, `spawnssofar=${i + 1}`];
      args.forEach((a, j) => lines.push(`arg${j + 1}=${a}`));
      lines.push(`argcnt=${args.length}`, `preput_num=${preput.length}`);
      preput.forEach(([k, v], j) => lines.push(`preput_key_${j}=${k}`, `preput_val_${j}=${v}`));
      lines.push(`info_num=${info.length}`);
      info.forEach(([k, v], j) => lines.push(`info_key_${j}=${k}`, `info_val_${j}=${v}`));
      lines.push('endcmd');
      for (const l of lines) if (l.includes('\n')) throw new PmiClientError('spawn arguments cannot contain a newline');
      out += lines.join('\n') + '\n';
    });
    await this.request(out, 'spawn_result');
  }

  /** Tell the server to kill the job. No reply is expected; resolves once the line is written. */
  abort(code: number, message?: string): Promise<void> {
    const pairs: Array<[string, string | number]> = [['exitcode', code]];
    if (message !== undefined && message !== '' && isV1Safe(message)) pairs.push(['message', message]);
    return this.serial(() => this.write(formatV1('abort', pairs)));
  }

  async finalize(): Promise<void> {
    await this.request(formatV1('finalize'), 'finalize_ack');
  }

  /** Close the stream; pending requests fail. */
  close(): void {
    this.onEnd(new PmiClientError('PMI client closed'));
    this.stream.destroy();
  }
}

function checkToken(what: string, v: string): void {
  if (!isV1Safe(v)) throw new PmiClientError(`PMI-1 ${what} cannot contain spaces or newlines`);
}

export type PmiPortAddress = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

/**
 * PMI_PORT: `host:port` split at the FIRST colon like MPICH (so no IPv6 literals), or our own `unix:///path`
 * (MPICH clients cannot use it; our transports and this client can).
 */
export function parsePmiPort(value: string): PmiPortAddress | undefined {
  if (value.startsWith('unix://')) {
    const path = value.slice('unix://'.length);
    return path.startsWith('/') ? { kind: 'unix', path } : undefined;
  }
  const colon = value.indexOf(':');
  if (colon <= 0) return undefined;
  const host = value.slice(0, colon);
  const portText = value.slice(colon + 1);
  if (!/^\d{1,5}$/.test(portText)) return undefined;
  const port = Number(portText);
  if (port < 1 || port > 65535) return undefined;
  return { kind: 'tcp', host, port };
}

export interface ConnectDeps {
  /** Wrap an inherited fd (default: `new net.Socket({ fd })`). */
  fromFd?: (fd: number) => Duplex;
  /** Open a connection (default: net.connect), resolved once connected. */
  connect?: (addr: PmiPortAddress) => Promise<Duplex>;
}

function defaultConnect(addr: PmiPortAddress): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const s = addr.kind === 'tcp' ? net.connect(addr.port, addr.host) : net.connect(addr.path);
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/**
 * Connect the way an MPICH rank does: PMI_FD first, then PMI_PORT (+ PMI_ID → initack). Rank and size come from
 * PMI_RANK/PMI_SIZE or from the initack's set lines. Returns undefined when neither variable is set (singleton).
 * Does not send init: call client.init() next.
 */
export async function connectFromEnv(
  env: Record<string, string | undefined>,
  opts: PmiClientOptions & ConnectDeps = {},
): Promise<PmiClient | undefined> {
  let stream: Duplex;
  const fdText = env.PMI_FD;
  if (fdText !== undefined && fdText !== '') {
    if (!/^\d+$/.test(fdText)) throw new PmiClientError(`PMI_FD=${fdText} is not a file descriptor number`);
    stream = (opts.fromFd ?? ((fd: number) => new net.Socket({ fd, readable: true, writable: true })))(Number(fdText));
  } else if (env.PMI_PORT !== undefined && env.PMI_PORT !== '') {
    const addr = parsePmiPort(env.PMI_PORT);
    if (!addr) throw new PmiClientError(`PMI_PORT=${env.PMI_PORT} is neither host:port nor unix:///path`);
    stream = await (opts.connect ?? defaultConnect)(addr);
  } else {
    return undefined;
  }
  const client = new PmiClient(stream, opts);
  const rank = Number(env.PMI_RANK ?? '0');
  const size = Number(env.PMI_SIZE ?? '1');
  if (Number.isInteger(rank)) client.rank = rank;
  if (Number.isInteger(size)) client.size = size;
  if (fdText === undefined || fdText === '') {
    const id = env.PMI_ID;
    if (id !== undefined && id !== '') {
      if (!/^\d+$/.test(id)) throw new PmiClientError(`PMI_ID=${id} is not a number`);
      await client.initack(Number(id));
    }
  }
  return client;
}
