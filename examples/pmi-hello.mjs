#!/usr/bin/env node
// The bundled demo rank for `make demo`: a plain Node program (no build step, node: builtins only) that does
// what MPI_Init does over PMI-1 on PMI_FD: init, get_maxes, get_my_kvsname, put its host+pid, barrier, read
// every rank's key, print one line, finalize. Exits non-zero if anything is off.
import net from 'node:net';
import os from 'node:os';

const TIMEOUT_MS = Number(process.env.PMI_HELLO_TIMEOUT_MS ?? 30000);

function fail(message) {
  process.stderr.write(`pmi-hello: ${message}\n`);
  process.exit(1);
}

const rank = Number(process.env.PMI_RANK ?? '0');
const size = Number(process.env.PMI_SIZE ?? '1');
if (!Number.isInteger(rank) || !Number.isInteger(size) || rank < 0 || rank >= size) {
  fail(`bad PMI_RANK/PMI_SIZE (${process.env.PMI_RANK}/${process.env.PMI_SIZE})`);
}
const host = os.hostname();

if (!process.env.PMI_FD) {
  // Singleton, as an MPI program started without a launcher.
  if (size !== 1) fail('PMI_FD is not set but PMI_SIZE > 1');
  process.stdout.write(`rank 0 of 1 on ${host}: saw 1 peers\n`);
  process.exit(0);
}
const fd = Number(process.env.PMI_FD);
if (!Number.isInteger(fd) || fd < 0) fail(`bad PMI_FD=${process.env.PMI_FD}`);

const timer = setTimeout(() => fail(`no progress within ${TIMEOUT_MS} ms`), TIMEOUT_MS);
const sock = new net.Socket({ fd, readable: true, writable: true });
sock.setEncoding('utf8');

// Line reader: replies arrive as whole `\n`-terminated lines, possibly several per chunk.
let buffered = '';
const lines = [];
let waiting;
sock.on('data', (s) => {
  buffered += s;
  let nl;
  while ((nl = buffered.indexOf('\n')) >= 0) {
    lines.push(buffered.slice(0, nl));
    buffered = buffered.slice(nl + 1);
  }
  if (waiting && lines.length > 0) {
    const w = waiting;
    waiting = undefined;
    w.resolve(lines.shift());
  }
});
sock.on('end', () => waiting?.reject(new Error('PMI server closed the connection')));
sock.on('error', (e) => (waiting ? waiting.reject(e) : fail(`socket error: ${e.message}`)));

function readLine() {
  if (lines.length > 0) return Promise.resolve(lines.shift());
  return new Promise((resolve, reject) => (waiting = { resolve, reject }));
}

function parse(line) {
  const fields = {};
  for (const tok of line.split(' ')) {
    if (!tok) continue;
    const eq = tok.indexOf('=');
    const k = eq < 0 ? tok : tok.slice(0, eq);
    if (!(k in fields)) fields[k] = eq < 0 ? '' : tok.slice(eq + 1);
  }
  return fields;
}

/** Send one command, read its reply, check the reply name (and rc=0 unless allowed to fail). */
async function call(line, expect, allowFail = false) {
  sock.write(line + '\n');
  const reply = parse(await readLine());
  if (reply.cmd !== expect) throw new Error(`sent "${line}", expected cmd=${expect}, got cmd=${reply.cmd}`);
  if (!allowFail && reply.rc !== '0') throw new Error(`"${line}" failed: rc=${reply.rc} ${reply.msg ?? ''}`);
  return reply;
}

async function main() {
  const init = await call('cmd=init pmi_version=1 pmi_subversion=1', 'response_to_init');
  if (init.pmi_version !== '1') throw new Error(`server speaks PMI ${init.pmi_version}`);
  const maxes = await call('cmd=get_maxes', 'maxes');
  const vallenMax = Number(maxes.vallen_max);
  if (!(vallenMax > 0)) throw new Error('get_maxes gave no vallen_max');
  const kvsname = (await call('cmd=get_my_kvsname', 'my_kvsname')).kvsname;
  if (!kvsname) throw new Error('empty kvsname');

  const mine = `${host}:${process.pid}`;
  if (mine.length > vallenMax || /\s/.test(mine)) throw new Error(`cannot put ${JSON.stringify(mine)}`);
  await call(`cmd=put kvsname=${kvsname} key=hello-${rank} value=${mine}`, 'put_result');
  await call('cmd=barrier_in', 'barrier_out');

  let seen = 0;
  for (let r = 0; r < size; r++) {
    const got = await call(`cmd=get kvsname=${kvsname} key=hello-${r}`, 'get_result', true);
    if (got.rc !== '0') throw new Error(`rank ${r} never said hello (${got.msg ?? 'rc=' + got.rc})`);
    if (!/^[^:]+:\d+$/.test(got.value ?? '')) throw new Error(`rank ${r} said ${JSON.stringify(got.value)}`);
    if (r === rank && got.value !== mine) throw new Error(`my own key reads back ${got.value}`);
    seen++;
  }
  process.stdout.write(`rank ${rank} of ${size} on ${host}: saw ${seen} peers\n`);

  await call('cmd=finalize', 'finalize_ack');
  clearTimeout(timer);
  sock.end();
}

main().catch((e) => fail(e.message));
