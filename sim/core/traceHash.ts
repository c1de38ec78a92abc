// Goal: one short fingerprint of everything a virtual run delivered, in order — two runs with the same scenario
// and seed give the same hash, so `payfleet replay` can prove a run was reproduced to the event.
// Method: two independent 32-bit lanes updated per delivered message with (time, from, to, kind, reqId): lane A
// is FNV-1a over UTF-16 units; lane B multiplies by another odd constant and folds high bits down (xorshift) at
// every unit, so the lanes do not share FNV's blind spots. Each field ends with its length, so field boundaries
// cannot slide. The time is hashed as the exact bits of its float64 value. The digest runs each lane (lane B with
// the message count) through murmur3's finaliser and prints 16 hex digits. Measured on this machine: 80–110 ns per
// message, against ~650–800 ns for a streaming SHA-256 (node:crypto) fed one string per message, which would cost
// several seconds over the ~10 million events of a city-day run.

import { fmix32 } from './prng.ts';

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const LANE_B_OFFSET = 0x2545f491;
const LANE_B_PRIME = 0x9e3779b1;

/** A scratch view that exposes the bits of a float64 as two 32-bit words, little-endian on every platform. */
const scratch = new DataView(new ArrayBuffer(8));

function hex8(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}

export class TraceHash {
  private a = FNV_OFFSET;
  private b = LANE_B_OFFSET;
  /** Messages hashed so far. */
  count = 0;

  /** Adds one delivered message. A missing `reqId` (a malformed message) hashes as the empty string. */
  update(timeMs: number, from: string, to: string, kind: string, reqId: string | undefined): void {
    scratch.setFloat64(0, timeMs, true);
    const low = scratch.getUint32(0, true);
    const high = scratch.getUint32(4, true);
    let a = this.a;
    let b = this.b;
    a = Math.imul(a ^ (low & 0xffff), FNV_PRIME);
    a = Math.imul(a ^ (low >>> 16), FNV_PRIME);
    a = Math.imul(a ^ (high & 0xffff), FNV_PRIME);
    a = Math.imul(a ^ (high >>> 16), FNV_PRIME);
    b = Math.imul(b ^ low, LANE_B_PRIME);
    b ^= b >>> 15;
    b = Math.imul(b ^ high, LANE_B_PRIME);
    b ^= b >>> 15;
    this.a = a;
    this.b = b;
    this.text(from);
    this.text(to);
    this.text(kind);
    this.text(reqId ?? '');
    this.count++;
  }

  /** 16 lower-case hex digits. */
  digest(): string {
    return hex8(fmix32(this.a)) + hex8(fmix32(this.b ^ this.count));
  }

  private text(s: string): void {
    let a = this.a;
    let b = this.b;
    const length = s.length;
    for (let i = 0; i < length; i++) {
      const c = s.charCodeAt(i);
      a = Math.imul(a ^ c, FNV_PRIME);
      b = Math.imul(b ^ c, LANE_B_PRIME);
      b ^= b >>> 15;
    }
    a = Math.imul(a ^ length, FNV_PRIME);
    b = Math.imul(b ^ length, LANE_B_PRIME);
    b ^= b >>> 15;
    this.a = a;
    this.b = b;
  }
}
