// Goal: the run registry of an mqtt run — the one file the coordinator writes before it starts the payment
// servers, telling each server the run's signature scheme, its own key, the shard count, every registered
// public key (proxies and POS units) and every payment means with its opening figures.
// Method: plain JSON with a version number. `writeRegistry` checks the registry, then writes a temporary file
// beside the target, fsyncs it and renames it over the target, so a server never reads half a registry.
// `readRegistry` checks every field and throws a RegistryError naming the file, the field (a path such as
// `means[3].kind`) and the value it found, so a bad registry is a message a person can act on.

import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { shardOf } from '../../machines/link.ts';
import { isMinor, type Minor } from '../../machines/domain/money.ts';
import type { MeansKind } from '../../machines/domain/means.ts';
import { keyFromSeed, type SignatureScheme, type SigningKey } from '../../machines/domain/signature.ts';
import { ENDPOINT_ID_PATTERN, MAX_SHARD } from '../../broker/topics.ts';
import type { RegistryMeans, RunRegistry } from '../core/fleetKeys.ts';
import { TopUpAgreements } from '../core/topUps.ts';
import type { TopUpRules } from '../../machines/domain/ledgerTopUps.ts';

export const REGISTRY_VERSION = 1;

const SCHEMES: readonly SignatureScheme[] = ['ed25519', 'sim'];
const MEANS_KINDS: readonly MeansKind[] = ['prepaid', 'postpaid', 'virtualWallet', 'electronicWallet'];

// The registry's shape is defined with the key derivation that fills it (sim/core sits below sim/sd).
export type { RegistryMeans, RunRegistry };

export type RegistryErrorCode = 'unreadable' | 'badJson' | 'badField';

/** A registry that cannot be read or used; `field` is a path into the JSON (`means[3].kind`), or '' for the file. */
export class RegistryError extends Error {
  constructor(
    readonly code: RegistryErrorCode,
    readonly file: string,
    readonly field: string,
    readonly value: unknown,
    detail: string,
  ) {
    super(`${file}: ${field ? `${field}: ` : ''}${detail}`);
    this.name = 'RegistryError';
  }
}

function shown(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isId = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

/** Checks a parsed registry; throws a RegistryError for the first field that is wrong. */
export function checkRegistry(value: unknown, file: string): RunRegistry {
  const bad = (field: string, v: unknown, expected: string): never => {
    throw new RegistryError('badField', file, field, v, `expected ${expected}, got ${shown(v)}`);
  };
  if (!isObject(value)) return bad('', value, 'a JSON object');
  const r = value;
  if (r.version !== REGISTRY_VERSION) bad('version', r.version, `${REGISTRY_VERSION}`);
  if (!SCHEMES.includes(r.scheme as SignatureScheme)) bad('scheme', r.scheme, SCHEMES.join(' or '));
  if (typeof r.serverKeySeedHex !== 'string' || !/^[0-9a-fA-F]{64}$/.test(r.serverKeySeedHex)) bad('serverKeySeedHex', r.serverKeySeedHex, '64 hex digits (a 32-byte seed)');
  if (typeof r.shards !== 'number' || !Number.isInteger(r.shards) || r.shards < 1 || r.shards > MAX_SHARD + 1) bad('shards', r.shards, `an integer from 1 to ${MAX_SHARD + 1}`);
  if (!isObject(r.publicKeys)) bad('publicKeys', r.publicKeys, 'an object of id → public key');
  for (const [id, key] of Object.entries(r.publicKeys as Record<string, unknown>)) {
    // Ids name MQTT topics and must equal the `from` the broker checks against the publisher.
    if (!ENDPOINT_ID_PATTERN.test(id)) bad(`publicKeys[${JSON.stringify(id)}]`, id, `an id matching ${ENDPOINT_ID_PATTERN.source}`);
    if (!isId(key)) bad(`publicKeys[${JSON.stringify(id)}]`, key, 'a non-empty public key string');
  }
  if (!Array.isArray(r.means)) bad('means', r.means, 'an array');
  const seen = new Set<string>();
  (r.means as unknown[]).forEach((m, i) => {
    const at = `means[${i}]`;
    if (!isObject(m)) return bad(at, m, 'an object');
    if (!isId(m.meansId)) bad(`${at}.meansId`, m.meansId, 'a non-empty string');
    if (seen.has(m.meansId as string)) bad(`${at}.meansId`, m.meansId, 'an id not listed before');
    seen.add(m.meansId as string);
    if (!MEANS_KINDS.includes(m.kind as MeansKind)) bad(`${at}.kind`, m.kind, MEANS_KINDS.join(', '));
    if (!isMinor(m.openingBalanceMinor)) bad(`${at}.openingBalanceMinor`, m.openingBalanceMinor, 'a non-negative integer (minor units)');
    if (!isMinor(m.creditLimitMinor)) bad(`${at}.creditLimitMinor`, m.creditLimitMinor, 'a non-negative integer (minor units)');
    if ((m.creditLimitMinor as number) > 0 && m.kind !== 'postpaid') bad(`${at}.creditLimitMinor`, m.creditLimitMinor, `0 for a ${m.kind as string} means (only postpaid has credit)`);
    if (m.topUp !== undefined) checkTopUp(m.topUp, `${at}.topUp`, bad);
    return undefined;
  });
  if (r.topUpSeed !== undefined && !Number.isSafeInteger(r.topUpSeed)) bad('topUpSeed', r.topUpSeed, 'a safe integer (the run\'s seed)');
  if (r.topUpSeed === undefined && (r.means as Array<Record<string, unknown>>).some((m) => m.topUp !== undefined)) bad('topUpSeed', r.topUpSeed, 'the run\'s seed, since a means has a top-up agreement');
  return value as unknown as RunRegistry;
}

/** A means' top-up agreement: a threshold and an amount distribution as the scenario loader resolves it. */
function checkTopUp(value: unknown, at: string, bad: (field: string, v: unknown, expected: string) => never): void {
  if (!isObject(value)) return bad(at, value, 'an object { belowMinor, amount }');
  if (!isMinor(value.belowMinor)) bad(`${at}.belowMinor`, value.belowMinor, 'a non-negative integer (minor units)');
  const amount = value.amount;
  if (!isObject(amount)) return bad(`${at}.amount`, amount, 'an amount distribution');
  const positive = (v: unknown): boolean => isMinor(v) && (v as number) >= 1;
  const fits =
    (amount.kind === 'fixed' && positive(amount.amountMinor)) ||
    (amount.kind === 'uniform' && positive(amount.minMinor) && positive(amount.maxMinor) && (amount.minMinor as number) <= (amount.maxMinor as number)) ||
    (amount.kind === 'lognormal' && positive(amount.medianMinor) && positive(amount.p99Minor) && (amount.medianMinor as number) <= (amount.p99Minor as number));
  if (!fits) bad(`${at}.amount`, amount, 'a fixed, uniform or lognormal amount distribution of positive minor units');
}

/** The top-up agreements of the means a server opens (none: undefined, and its ledger never tops up). */
export function topUpRulesOf(registry: RunRegistry, means: readonly RegistryMeans[]): TopUpRules | undefined {
  if (registry.topUpSeed === undefined) return undefined;
  const agreements = new TopUpAgreements(registry.topUpSeed);
  for (const m of means) agreements.add(m.meansId, m.topUp);
  return agreements.rules;
}

/** Reads and checks a registry file. Throws RegistryError (unreadable, badJson, badField) naming the file. */
export function readRegistry(path: string): RunRegistry {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new RegistryError('unreadable', path, '', path, `cannot read the registry: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new RegistryError('badJson', path, '', undefined, `not valid JSON: ${(error as Error).message}`);
  }
  return checkRegistry(parsed, path);
}

/** Checks `registry`, then writes it to `path` atomically (temporary file, fsync, rename, fsync of the folder). */
export function writeRegistry(path: string, registry: RunRegistry): void {
  checkRegistry(registry, path);
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(temporary, 'w');
  try {
    writeSync(fd, JSON.stringify(registry));
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(temporary, { force: true });
    throw error;
  }
  closeSync(fd);
  renameSync(temporary, path);
  // The rename itself is durable only once the folder's entry is on disk.
  const dirFd = openSync(dirname(path), 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}

/** The servers' signing key of the run. */
export function serverKeyOf(registry: RunRegistry): SigningKey {
  return keyFromSeed(registry.scheme, Buffer.from(registry.serverKeySeedHex, 'hex'));
}

/** The means a server of `shards` serves. */
export function meansOfShards(registry: RunRegistry, shards: readonly number[]): RegistryMeans[] {
  const served = new Set(shards);
  return registry.means.filter((m) => served.has(shardOf(m.meansId, registry.shards)));
}

/** A lookup of registered public keys (a Map: the JSON object would also answer `toString` or `__proto__`). */
export function publicKeyLookup(registry: RunRegistry): (id: string) => string | undefined {
  const keys = new Map(Object.entries(registry.publicKeys));
  return (id) => keys.get(id);
}
