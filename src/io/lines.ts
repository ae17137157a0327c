// Line assembly for rank output: emit only whole lines so no line ever mixes bytes of two ranks (Hydra's
// output does), keep the unterminated tail until more arrives or the stream ends, and never hold more than
// `maxCarry` bytes: a "line" longer than that (binary data) is passed through as it is.
export const DEFAULT_MAX_CARRY = 1 << 20;

export class LineAssembler {
  private carry: Buffer[] = [];
  private carryLen = 0;
  constructor(private readonly maxCarry = DEFAULT_MAX_CARRY) {}

  /** Bytes safe to emit now (whole lines, or an over-long run), or undefined when everything is carried. */
  push(chunk: Buffer): Buffer | undefined {
    const nl = chunk.lastIndexOf(10);
    if (nl < 0) {
      this.carry.push(chunk);
      this.carryLen += chunk.length;
      if (this.carryLen < this.maxCarry) return undefined;
      return this.take();
    }
    const head = chunk.subarray(0, nl + 1);
    const tail = chunk.subarray(nl + 1);
    let out: Buffer;
    if (this.carryLen > 0) {
      this.carry.push(head);
      out = Buffer.concat(this.carry, this.carryLen + head.length);
      this.carry = [];
      this.carryLen = 0;
    } else {
      out = head;
    }
    if (tail.length > 0) {
      this.carry.push(tail);
      this.carryLen = tail.length;
    }
    return out;
  }

  /** The unterminated tail at end of stream (never lost), or undefined. */
  flush(): Buffer | undefined {
    return this.carryLen > 0 ? this.take() : undefined;
  }

  get pending(): number {
    return this.carryLen;
  }

  private take(): Buffer {
    const out = this.carry.length === 1 ? (this.carry[0] as Buffer) : Buffer.concat(this.carry, this.carryLen);
    this.carry = [];
    this.carryLen = 0;
    return out;
  }
}

/** Prefix every line of `lines` (whole lines, possibly an unterminated last one) with `label`. */
export function labelLines(lines: Buffer, label: string, terminate: boolean): Buffer {
  const parts: Buffer[] = [];
  const lab = Buffer.from(label);
  let start = 0;
  while (start < lines.length) {
    const nl = lines.indexOf(10, start);
    const end = nl < 0 ? lines.length : nl + 1;
    parts.push(lab, lines.subarray(start, end));
    start = end;
  }
  if (terminate && lines.length > 0 && lines[lines.length - 1] !== 10) parts.push(Buffer.from('\n'));
  return Buffer.concat(parts);
}
