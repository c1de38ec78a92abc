import { afterAll, describe, it, expect } from 'vitest';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { shardOf } from '../../machines/link.ts';
import { keyFromSeed, signFields, verifyFields } from '../../machines/domain/signature.ts';
import { meansOfShards, publicKeyLookup, readRegistry, RegistryError, serverKeyOf, writeRegistry, type RunRegistry } from './registry.ts';

const dir = mkdtempSync(join(tmpdir(), 'payfleet-registry-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const proxyKey = keyFromSeed('sim', new Uint8Array(32).fill(1));

function sample(): RunRegistry {
  return {
    version: 1,
    scheme: 'sim',
    serverKeySeedHex: '09'.repeat(32),
    shards: 4,
    publicKeys: { T1: proxyKey.publicKey, 'pos-1': keyFromSeed('sim', new Uint8Array(32).fill(2)).publicKey },
    means: Array.from({ length: 12 }, (_, i) => ({
      meansId: `T${i}.m`,
      kind: i % 3 === 0 ? ('postpaid' as const) : ('prepaid' as const),
      openingBalanceMinor: 1000 * i,
      creditLimitMinor: i % 3 === 0 ? 500 : 0,
    })),
  };
}

function errorOf(fn: () => unknown): RegistryError {
  try {
    fn();
  } catch (error) {
    if (error instanceof RegistryError) return error;
    throw error;
  }
  throw new Error('expected a RegistryError');
}

/** Writes `mutate(sample())` as raw JSON (bypassing writeRegistry's check) and reads it back. */
function readMutated(mutate: (r: Record<string, unknown>) => void): RegistryError {
  const registry = sample() as unknown as Record<string, unknown>;
  mutate(registry);
  const path = join(dir, 'bad.json');
  writeFileSync(path, JSON.stringify(registry));
  return errorOf(() => readRegistry(path));
}

describe('run registry', () => {
  it('reads back what it wrote, and leaves no temporary file beside it', () => {
    const path = join(dir, 'registry.json');
    writeRegistry(path, sample());
    writeRegistry(path, { ...sample(), shards: 2 });
    expect(readRegistry(path)).toEqual({ ...sample(), shards: 2 });
    expect(readdirSync(dir).filter((f) => f.includes('registry'))).toEqual(['registry.json']);
  });

  it('gives the server key, the means of a shard range and the public keys of the run', () => {
    const registry = sample();
    const key = serverKeyOf(registry);
    expect(key.publicKey).toBe(keyFromSeed('sim', new Uint8Array(32).fill(9)).publicKey);
    expect(verifyFields('sim', key.publicKey, ['x'], signFields(key, ['x']))).toBe(true);
    const served = meansOfShards(registry, [0, 2]);
    expect(served.length).toBeGreaterThan(0);
    expect(served.every((m) => [0, 2].includes(shardOf(m.meansId, 4)))).toBe(true);
    const all = [0, 1, 2, 3].flatMap((s) => meansOfShards(registry, [s]).map((m) => m.meansId));
    expect(all.sort()).toEqual(registry.means.map((m) => m.meansId).sort());
    const lookup = publicKeyLookup(registry);
    expect(lookup('T1')).toBe(proxyKey.publicKey);
    expect(lookup('T2')).toBeUndefined();
    expect(lookup('toString')).toBeUndefined();
  });

  it('names the file when it cannot be read or is not JSON', () => {
    const missing = join(dir, 'missing.json');
    expect(errorOf(() => readRegistry(missing))).toMatchObject({ code: 'unreadable', file: missing });
    expect(errorOf(() => readRegistry(missing)).message).toContain(missing);
    const garbled = join(dir, 'garbled.json');
    writeFileSync(garbled, '{"version": 1,');
    expect(errorOf(() => readRegistry(garbled))).toMatchObject({ code: 'badJson', file: garbled });
  });

  it('names the field and the value for every kind of wrong field', () => {
    const cases: Array<[(r: Record<string, unknown>) => void, string]> = [
      [(r) => (r.version = 2), 'version'],
      [(r) => (r.scheme = 'rsa'), 'scheme'],
      [(r) => (r.serverKeySeedHex = 'abcd'), 'serverKeySeedHex'],
      [(r) => delete r.serverKeySeedHex, 'serverKeySeedHex'],
      [(r) => (r.shards = 0), 'shards'],
      [(r) => (r.shards = 2.5), 'shards'],
      [(r) => (r.publicKeys = []), 'publicKeys'],
      [(r) => (r.publicKeys = { 'T/1': 'k' }), 'publicKeys["T/1"]'],
      [(r) => (r.publicKeys = { T1: '' }), 'publicKeys["T1"]'],
      [(r) => (r.means = {}), 'means'],
      [(r) => ((r.means as unknown[])[3] = 'm'), 'means[3]'],
      [(r) => ((r.means as Record<string, unknown>[])[2]!.meansId = ''), 'means[2].meansId'],
      [(r) => ((r.means as Record<string, unknown>[])[2]!.meansId = 'T1.m'), 'means[2].meansId'],
      [(r) => ((r.means as Record<string, unknown>[])[4]!.kind = 'gold'), 'means[4].kind'],
      [(r) => ((r.means as Record<string, unknown>[])[4]!.openingBalanceMinor = 1.5), 'means[4].openingBalanceMinor'],
      [(r) => ((r.means as Record<string, unknown>[])[4]!.openingBalanceMinor = -1), 'means[4].openingBalanceMinor'],
      [(r) => ((r.means as Record<string, unknown>[])[4]!.creditLimitMinor = 10), 'means[4].creditLimitMinor'],
      [(r) => ((r.means as Record<string, unknown>[])[5]!.topUp = { belowMinor: -1, amount: { kind: 'fixed', amountMinor: 5 } }), 'means[5].topUp.belowMinor'],
      [(r) => ((r.means as Record<string, unknown>[])[5]!.topUp = { belowMinor: 10, amount: { kind: 'uniform', minMinor: 9, maxMinor: 5 } }), 'means[5].topUp.amount'],
      [(r) => ((r.means as Record<string, unknown>[])[5]!.topUp = { belowMinor: 10, amount: { kind: 'fixed', amountMinor: 5 } }), 'topUpSeed'],
      [(r) => (r.topUpSeed = 'one'), 'topUpSeed'],
    ];
    for (const [mutate, field] of cases) {
      const error = readMutated(mutate);
      expect(error.code, field).toBe('badField');
      expect(error.field, field).toBe(field);
      expect(error.message, field).toContain(`${field}: expected`);
      expect(error.message, field).toContain(join(dir, 'bad.json'));
    }
    expect(readMutated((r) => (r.shards = 0)).value).toBe(0);
  });

  it('refuses to write a wrong registry, and leaves the file as it was', () => {
    const path = join(dir, 'kept.json');
    writeRegistry(path, sample());
    expect(errorOf(() => writeRegistry(path, { ...sample(), shards: -1 }))).toMatchObject({ field: 'shards', file: path });
    expect(readRegistry(path).shards).toBe(4);
  });
});
