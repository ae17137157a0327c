// The plumbing of the scale model: a stand-in for a launcher's child process (what ssh gives RemoteProxy and
// Subtree: stdin, stdout, exit/close events, kill), in-memory byte pipes that deliver on a later turn of the event
// loop (as a real pipe does), a counter of control-channel frames, and the multiplexing of many channels over the
// one socket between the controller process and the simulated hosts' process.
import { EventEmitter } from 'node:events';
import { PassThrough, Readable, Writable } from 'node:stream';

/**
 * Counts the bytes and whole frames of one direction of a control channel ([u32 length][kind][body], see
 * src/control/frame.ts) without copying or decoding anything: it only walks the length headers.
 */
export class FrameCounter {
  bytes = 0;
  frames = 0;
  /** bytes of the current frame still to come (0: at a frame boundary) */
  #rest = 0;
  /** a length header split across chunks */
  #head = Buffer.alloc(0);

  push(chunk) {
    this.bytes += chunk.length;
    let i = 0;
    while (i < chunk.length) {
      if (this.#rest > 0) {
        const n = Math.min(this.#rest, chunk.length - i);
        this.#rest -= n;
        i += n;
        continue;
      }
      const need = 4 - this.#head.length;
      const take = chunk.subarray(i, i + need);
      i += take.length;
      this.#head = this.#head.length === 0 ? Buffer.from(take) : Buffer.concat([this.#head, take]);
      if (this.#head.length < 4) break;
      this.#rest = this.#head.readUInt32BE(0);
      this.#head = Buffer.alloc(0);
      this.frames++;
    }
  }

  snapshot() {
    return { bytes: this.bytes, frames: this.frames };
  }
}

/** A one-way in-memory pipe: write() now, the reader's 'data' on a later turn (setImmediate), in order. */
export class Wire {
  readonly = new Readable({ read() {} });
  #queue = [];
  #scheduled = false;
  #ended = false;

  write(chunk) {
    if (this.#ended) return;
    this.#queue.push(chunk);
    this.#schedule();
  }

  end() {
    if (this.#ended) return;
    this.#ended = true;
    this.#schedule();
  }

  #schedule() {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      const q = this.#queue;
      this.#queue = [];
      for (const c of q) this.readonly.push(c);
      if (this.#ended && !this.readonly.readableEnded) this.readonly.push(null);
    });
  }
}

/**
 * What a Launcher's start() returns in the model: a ChildProcess look-alike. `toChild(buf)` carries what the
 * parent writes to its stdin, `closeChild()` its EOF, `killChild(sig)` a kill; the other side calls
 * fromChild(buf) for its stdout and exited(code, signal) when it is gone.
 */
export class FakeChild extends EventEmitter {
  exitCode = null;
  signalCode = null;
  stdout = new PassThrough({ highWaterMark: 1 << 20 });
  stderr = new PassThrough();
  pid;
  #ends;

  constructor(pid, ends) {
    super();
    this.pid = pid;
    this.#ends = ends;
    this.stdin = new Writable({
      highWaterMark: 1 << 20,
      write: (chunk, _enc, cb) => {
        ends.toChild(chunk);
        cb();
      },
      final: (cb) => {
        ends.closeChild();
        cb();
      },
    });
  }

  kill(signal = 'SIGTERM') {
    if (this.exitCode !== null || this.signalCode !== null) return false;
    this.#ends.killChild(signal);
    return true;
  }

  fromChild(chunk) {
    this.stdout.write(chunk);
  }

  exited(code, signal) {
    if (this.exitCode !== null || this.signalCode !== null) return;
    this.exitCode = signal ? null : code;
    this.signalCode = signal ?? null;
    this.stdout.end();
    this.stderr.end();
    this.emit('exit', this.exitCode, this.signalCode);
    setImmediate(() => this.emit('close', this.exitCode, this.signalCode));
  }
}

// The multiplexed socket between the controller and the hosts' process: [u32 length of the rest][u32 channel]
// [u8 type][payload]. Channel c is first-level proxy c's ssh session; channel 0xffffffff carries the model's
// own JSON messages (start, first barrier done, statistics).
export const MUX = { OPEN: 1, DATA: 2, EOF: 3, KILL: 4, EXIT: 5, MODEL: 6 };
export const MODEL_CHANNEL = 0xffffffff;

export function muxHeader(channel, type, length) {
  const h = Buffer.allocUnsafe(9);
  h.writeUInt32BE(length + 5, 0);
  h.writeUInt32BE(channel, 4);
  h.writeUInt8(type, 8);
  return h;
}

/** Send over the mux socket: header and payload as separate writes (no copy of big payloads). */
export function muxSend(socket, channel, type, payload) {
  const body = payload === undefined ? Buffer.alloc(0) : Buffer.isBuffer(payload) ? payload : Buffer.from(JSON.stringify(payload));
  socket.write(muxHeader(channel, type, body.length));
  if (body.length > 0) socket.write(body);
}

/** Incremental mux decoder: calls onMessage(channel, type, payload) for every whole message. */
export function muxReader(onMessage) {
  let bufs = [];
  let len = 0;
  return (chunk) => {
    bufs.push(chunk);
    len += chunk.length;
    for (;;) {
      if (len < 4) return;
      if (bufs[0].length < 4) bufs = [Buffer.concat(bufs)];
      const n = bufs[0].readUInt32BE(0);
      if (len < 4 + n) return;
      if (bufs[0].length < 4 + n) bufs = [Buffer.concat(bufs)];
      const first = bufs[0];
      const msg = first.subarray(4, 4 + n);
      const rest = first.subarray(4 + n);
      if (rest.length > 0) bufs[0] = rest;
      else bufs.shift();
      len -= 4 + n;
      onMessage(msg.readUInt32BE(0), msg.readUInt8(4), msg.subarray(5));
    }
  };
}
