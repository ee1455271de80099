/**
 * What TCP and UDP views share: a binding to buf[start, end) and the two port fields that
 * both headers start with (which is what NAT rewrites and flow lookups touch).
 */
import { readU16, writeU16 } from './bytes.js';

const EMPTY = new Uint8Array(0);

export abstract class PortsView {
  buf: Uint8Array = EMPTY;
  start = 0;
  /** End of the segment/datagram (absolute index into buf). */
  end = 0;

  protected bind(buf: Uint8Array, start: number, end: number): null {
    this.buf = buf;
    this.start = start;
    this.end = end;
    return null;
  }

  get srcPort(): number {
    return readU16(this.buf, this.start);
  }
  set srcPort(v: number) {
    writeU16(this.buf, this.start, v);
  }
  get dstPort(): number {
    return readU16(this.buf, this.start + 2);
  }
  set dstPort(v: number) {
    writeU16(this.buf, this.start + 2, v);
  }
}
