// Goal: every random draw of a virtual run comes from the run's seed, so the same seed gives the same run, and
// a new consumer of randomness (one more terminal, one more fault) does not shift the draws of all the others.
// Method: pure-rand v8's mutable xoroshiro128+ generator, seeded with a 128-bit key, and its uniform
// distributions. The root key is mixed from the seed; `fork(label)` derives a child key from the parent's key and
// the label only (never from how far the parent has drawn), with a murmur3-style mix over four 32-bit lanes.
// Continuous laws are built on the 53-bit uniform float: exponential by inversion, normal by Box–Muller, and a
// log-normal fitted to a median and a 99th percentile.

import { xoroshiro128plusFromState } from 'pure-rand/generator/xoroshiro128plus';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import type { RandomGenerator } from 'pure-rand/types/RandomGenerator';
import { DomainError } from '../../machines/domain/money.ts';

/** The 99th percentile of the standard normal law: P(Z ≤ Z99) = 0.99. */
const Z99 = 2.3263478740408408;
const TWO_PI = 2 * Math.PI;

/** A stream's 128-bit key; only the `Prng` constructor and `fork` make one. */
export class PrngKey {
  constructor(readonly words: readonly [number, number, number, number]) {}
}

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

function murmurStep(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = rotl(k, 15);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = rotl(h, 13);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** MurmurHash3's 32-bit finaliser: spreads every input bit over the output (also used by the trace hash). */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

/** Four independent 32-bit mixes of (parent words, label): one lane per output word, each with its own start. */
function deriveKey(parent: readonly number[], label: string): PrngKey {
  const out: [number, number, number, number] = [0, 0, 0, 0];
  for (let lane = 0; lane < 4; lane++) {
    let h = Math.imul(lane + 1, 0x9e3779b9) | 0;
    for (const word of parent) h = murmurStep(h, word);
    for (let i = 0; i < label.length; i++) h = murmurStep(h, label.charCodeAt(i));
    h ^= label.length;
    out[lane] = fmix32(h);
  }
  // xoroshiro128+ must not start from the all-zero state.
  if ((out[0] | out[1] | out[2] | out[3]) === 0) out[0] = 1;
  return new PrngKey(out);
}

function generatorOf(key: PrngKey): RandomGenerator {
  return xoroshiro128plusFromState(key.words);
}

export class Prng {
  readonly key: PrngKey;
  private readonly rng: RandomGenerator;

  /** A root stream from a seed (any safe integer; scenarios use 0 … 2^32 − 1), or a stream from a derived key. */
  constructor(seed: number | PrngKey) {
    if (seed instanceof PrngKey) {
      this.key = seed;
    } else {
      if (!Number.isSafeInteger(seed)) throw new DomainError('badSeed', 'a seed must be a safe integer', seed);
      const low = seed >>> 0;
      const high = Math.floor(seed / 0x1_0000_0000) | 0;
      // A fixed tag keeps the root key apart from every key `fork` derives.
      this.key = deriveKey([low, high, 0x70617966, 0x726f6f74], '#root');
    }
    this.rng = generatorOf(this.key);
  }

  /** An independent stream named by `label`: the same parent key and label always give the same stream. */
  fork(label: string): Prng {
    return new Prng(deriveKey(this.key.words, label));
  }

  /** A uniform float in [0, 1) with 53 random bits. */
  nextFloat(): number {
    return uniformFloat64(this.rng);
  }

  /** A uniform 32-bit unsigned integer. */
  nextUint32(): number {
    return this.rng.next() >>> 0;
  }

  /** A uniform integer in [min, max], both included. */
  int(min: number, max: number): number {
    if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max) || min > max) {
      throw new DomainError('badRange', `int(min, max) needs safe integers with min ≤ max, got ${min}, ${max}`, [min, max]);
    }
    return uniformInt(this.rng, min, max);
  }

  /** True with probability p (always one draw, so a stream stays aligned whatever p is). */
  chance(p: number): boolean {
    return this.nextFloat() < p;
  }

  /** An exponential draw with the given mean (≥ 0), by inversion. */
  exponential(mean: number): number {
    if (!(mean >= 0) || mean === Infinity) throw new DomainError('badMean', 'an exponential mean must be finite and ≥ 0', mean);
    // 1 − u lies in (0, 1], so the logarithm is finite.
    return -mean * Math.log1p(-this.nextFloat());
  }

  /** A normal draw (Box–Muller, two uniform draws). */
  normal(mean = 0, standardDeviation = 1): number {
    const radius = Math.sqrt(-2 * Math.log1p(-this.nextFloat()));
    return mean + standardDeviation * radius * Math.cos(TWO_PI * this.nextFloat());
  }

  /**
   * A log-normal draw whose median and 99th percentile are the given ones: exp(μ) = median and
   * exp(μ + Z99·σ) = p99. With p99 = median every draw is the median.
   */
  lognormal(median: number, p99: number): number {
    if (!(median > 0) || !(p99 >= median) || p99 === Infinity) {
      throw new DomainError('badLognormal', `a log-normal needs 0 < median ≤ p99 < ∞, got median ${median}, p99 ${p99}`, [median, p99]);
    }
    const sigma = Math.log(p99 / median) / Z99;
    return median * Math.exp(sigma * this.normal());
  }

  /** One item, uniformly. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new DomainError('emptyChoice', 'cannot pick from an empty list', items);
    return items[uniformInt(this.rng, 0, items.length - 1)]!;
  }

  /** One item with probability proportional to its weight (weights finite and ≥ 0, at least one > 0). */
  weighted<T>(items: readonly T[], weightOf: (item: T) => number): T {
    let total = 0;
    for (const item of items) {
      const weight = weightOf(item);
      if (!(weight >= 0) || weight === Infinity) throw new DomainError('badWeight', 'a weight must be finite and ≥ 0', weight);
      total += weight;
    }
    if (!(total > 0)) throw new DomainError('emptyChoice', 'weighted choice needs a positive total weight', items);
    let target = this.nextFloat() * total;
    let last: T | undefined;
    for (const item of items) {
      const weight = weightOf(item);
      if (weight === 0) continue;
      last = item;
      target -= weight;
      if (target < 0) return item;
    }
    // Rounding can leave a sliver of total unclaimed; it belongs to the last item with weight.
    return last!;
  }

  /** 32 random bytes (seeds for signing keys). */
  bytes32(): Uint8Array {
    const bytes = new Uint8Array(32);
    for (let i = 0; i < 32; i += 4) {
      const word = this.rng.next();
      bytes[i] = word & 0xff;
      bytes[i + 1] = (word >>> 8) & 0xff;
      bytes[i + 2] = (word >>> 16) & 0xff;
      bytes[i + 3] = (word >>> 24) & 0xff;
    }
    return bytes;
  }
}
