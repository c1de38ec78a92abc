// Goal: signatures for proofs of payment, proxy requests and server responses ([INV-5], [INV-6]).
// Method: Ed25519 from node:crypto over a canonical encoding (a JSON array of the signed fields, in a fixed
// order). Keys derive from a 32-byte seed so that a seeded run makes the same keys every time. A second
// scheme, 'sim', replaces Ed25519 by a keyed 53-bit hash for fleet-scale virtual runs, where Ed25519 would
// dominate the run time (≈45 µs to sign, ≈140 µs to verify on this machine). It models the checks, not the
// cryptography: it is not secure, and scenarios say which scheme they use.

import { createPrivateKey, createPublicKey, sign as edSign, verify as edVerify, type KeyObject } from 'node:crypto';
import type { Minor } from './money.ts';
import type { PaymentPath } from './discriminate.ts';

export type SignatureScheme = 'ed25519' | 'sim';

export interface SigningKey {
  scheme: SignatureScheme;
  /** Published, so anyone can verify. Ed25519: the raw 32-byte public key in base64url; sim: the key's secret in hex. */
  publicKey: string;
  /** Ed25519: the private KeyObject; sim: the secret as a number. */
  privateKey: KeyObject | number;
}

const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** Derives a key pair from a 32-byte seed (deterministic for a given seed). */
export function keyFromSeed(scheme: SignatureScheme, seed: Uint8Array): SigningKey {
  if (seed.length !== 32) throw new Error(`keyFromSeed: the seed must be 32 bytes, got ${seed.length}`);
  if (scheme === 'sim') {
    // 53 bits of the seed are the shared secret; published as hex so the verifier can recompute.
    const secret = Number(Buffer.from(seed).readBigUInt64BE(0) & 0x1f_ffff_ffff_ffffn);
    return { scheme, publicKey: secret.toString(16), privateKey: secret };
  }
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  return { scheme, publicKey: spki.subarray(SPKI_ED25519_PREFIX.length).toString('base64url'), privateKey };
}

/** The fields a signature covers, in order. Only strings, integers and booleans, so the encoding is canonical. */
export type SignedFields = readonly (string | number | boolean)[];

export function canonicalEncoding(fields: SignedFields): string {
  return JSON.stringify(fields);
}

/** A keyed FNV-1a over the text, folded to 53 bits; fast and deterministic, not cryptographic. */
function simDigest(secret: number, text: string): string {
  let h1 = (secret ^ 0x811c9dc5) >>> 0;
  let h2 = ((secret / 0x1_0000_0000) ^ 0x01000193) >>> 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ c ^ (h1 >>> 7), 0x5bd1e995) >>> 0;
  }
  return ((h2 & 0x1fffff) * 0x1_0000_0000 + h1).toString(36);
}

export function signFields(key: SigningKey, fields: SignedFields): string {
  const text = canonicalEncoding(fields);
  if (key.scheme === 'sim') return 's.' + simDigest(key.privateKey as number, text);
  return edSign(null, Buffer.from(text), key.privateKey as KeyObject).toString('base64url');
}

const publicKeyCache = new Map<string, KeyObject>();

function ed25519PublicKey(publicKey: string): KeyObject {
  let key = publicKeyCache.get(publicKey);
  if (!key) {
    key = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, Buffer.from(publicKey, 'base64url')]), format: 'der', type: 'spki' });
    publicKeyCache.set(publicKey, key);
  }
  return key;
}

/** True when `signature` was made over `fields` by the holder of `publicKey`; never throws on garbage. */
export function verifyFields(scheme: SignatureScheme, publicKey: string, fields: SignedFields, signature: unknown): boolean {
  if (typeof signature !== 'string' || signature.length === 0 || signature.length > 200) return false;
  const text = canonicalEncoding(fields);
  if (scheme === 'sim') {
    const secret = Number.parseInt(publicKey, 16);
    return Number.isSafeInteger(secret) && signature === 's.' + simDigest(secret, text);
  }
  try {
    return edVerify(null, Buffer.from(text), ed25519PublicKey(publicKey), Buffer.from(signature, 'base64url'));
  } catch {
    return false;
  }
}

/**
 * What a proxy signs for each payment: the canonical tuple, who signed it, and the sale it answers.
 * The sale binding works as EMV's cryptogram does: the card's MAC covers the terminal's transaction data and an
 * Unpredictable Number the terminal chose (tag 9F37), so a cryptogram made for one sale is worthless for
 * another. Here the proxy signs the order id, the POS that asked and the POS's nonce; a POS accepts a proof only
 * if those are the ones of the sale in progress [INV-5 beneficiary]. An app's order has no POS and no nonce.
 */
export interface PaymentClaim {
  txId: string;
  amountMinor: Minor;
  payee: string;
  timeMs: number;
  /** Strictly increasing per proxy; a used counter with another transaction is a replay. */
  counter: number;
  proxyId: string;
  meansId: string;
  /** The order this payment answers (the proxy always sets it; claims made by tools and tests may omit it). */
  orderId?: string;
  /** The POS that sent the order, for a proximity sale. */
  posId?: string;
  /** The POS's unpredictable number for the sale, echoed under the proxy's signature. */
  nonce?: string;
  /**
   * How the proxy decided it (local offline, below the threshold, internal, or remote), under its signature so a
   * proof cannot be relabelled — a remote proof as local to drop SD's receipt, or the other way round. The proxy
   * always sets it; claims made by tools and tests may omit it.
   */
  path?: PaymentPath;
}

/** The signed tuple; an absent order, POS, nonce or path signs as '' (none is ever empty, so '' means absent). */
export function paymentClaimFields(c: PaymentClaim): SignedFields {
  return ['pay.v3', c.txId, c.amountMinor, c.payee, c.timeMs, c.counter, c.proxyId, c.meansId, c.orderId ?? '', c.posId ?? '', c.nonce ?? '', c.path ?? ''];
}

/**
 * SD's compact receipt for a remote payment, carried in the proof: the transaction, its means, payee and amount
 * (the proof's own fields) and what SD did with it. SD's signature over these fields (`Proof.serverSig`) settles a
 * dispute without SD's whole answer: anyone holding SD's public key can check that SD debited or authorised exactly
 * this payment [INV-5].
 */
export type ServerOutcome = 'debited' | 'authorised';

export function serverReceiptFields(r: Pick<PaymentClaim, 'txId' | 'meansId' | 'payee' | 'amountMinor'>, outcome: ServerOutcome): SignedFields {
  return ['sdReceipt.v1', r.txId, r.meansId, r.payee, r.amountMinor, outcome];
}

export function signServerReceipt(key: SigningKey, r: Pick<PaymentClaim, 'txId' | 'meansId' | 'payee' | 'amountMinor'>, outcome: ServerOutcome): string {
  return signFields(key, serverReceiptFields(r, outcome));
}

/** True when the proof carries SD's receipt and SD's signature over it verifies. */
export function verifyServerReceipt(
  scheme: SignatureScheme,
  serverPublicKey: string,
  proof: Pick<PaymentClaim, 'txId' | 'meansId' | 'payee' | 'amountMinor'> & { serverOutcome?: unknown; serverSig?: unknown },
): boolean {
  if (proof.serverOutcome !== 'debited' && proof.serverOutcome !== 'authorised') return false;
  return verifyFields(scheme, serverPublicKey, serverReceiptFields(proof, proof.serverOutcome), proof.serverSig);
}

/** What a proxy signs when it declines an order, so a refusal is as attributable as an approval. */
export function refusalFields(r: { proxyId: string; orderId: string; reason: string }): SignedFields {
  return ['refusal.v1', r.proxyId, r.orderId, r.reason];
}

export function signClaim(key: SigningKey, claim: PaymentClaim): string {
  return signFields(key, paymentClaimFields(claim));
}

export function verifyClaim(scheme: SignatureScheme, publicKey: string, claim: PaymentClaim, signature: unknown): boolean {
  return verifyFields(scheme, publicKey, paymentClaimFields(claim), signature);
}
