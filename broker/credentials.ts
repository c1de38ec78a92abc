// Goal: the harness issues every terminal, POS and server its broker credentials, and the broker checks them,
// so a client can only be who its credentials say (anonymous clients are refused).
// Method: the username is the client's name in the topic contract (`tm.{id}`, `pos.{id}`, `sd.{range}`,
// `harness`) and the password is HMAC-SHA256(secret, username) in base64url, with a secret made per run. The
// broker needs no table of users: it recomputes the password from the username. Mosquitto, which cannot do
// that, gets a password file written from the same function (broker/mosquitto.ts).

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { identityOf, usernameOf, type ClientIdentity } from './topics.ts';

export { identityOf, usernameOf } from './topics.ts';

export interface Credentials {
  /** Also the MQTT client id, so one identity has one session. */
  username: string;
  password: string;
}

/**
 * A fresh per-run secret: 32 random bytes in hex. Not base64url: one secret in 64 would begin with '-', and a
 * user who passes it as `--secret VALUE` would see it read as a flag.
 */
export function newSecret(): string {
  return randomBytes(32).toString('hex');
}

export function passwordFor(secret: string, username: string): string {
  if (secret.length === 0) throw new Error('passwordFor: the secret must not be empty');
  return createHmac('sha256', secret).update(username).digest('base64url');
}

export function credentialsFor(secret: string, identity: ClientIdentity): Credentials {
  const username = usernameOf(identity);
  return { username, password: passwordFor(secret, username) };
}

/** True when `password` is the one issued for `username` (compared in constant time). */
export function checkPassword(secret: string, username: string, password: string | Buffer | undefined): boolean {
  if (password === undefined) return false;
  const expected = Buffer.from(passwordFor(secret, username));
  const given = Buffer.isBuffer(password) ? password : Buffer.from(password);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Why a connection attempt is refused, or undefined when it is accepted. */
export type AuthRefusal = 'anonymous' | 'unknownUser' | 'badPassword' | 'clientIdMismatch';

/** Checks a CONNECT: known username scheme, right password, and client id equal to the username. */
export function authenticate(
  secret: string,
  clientId: string,
  username: string | undefined,
  password: string | Buffer | undefined,
): { ok: true; identity: ClientIdentity } | { ok: false; reason: AuthRefusal } {
  if (username === undefined || username === '') return { ok: false, reason: 'anonymous' };
  const identity = identityOf(username);
  if (!identity) return { ok: false, reason: 'unknownUser' };
  if (!checkPassword(secret, username, password)) return { ok: false, reason: 'badPassword' };
  // One session per identity: a client may not take another's client id (and kick it off) with its own password.
  if (clientId !== username) return { ok: false, reason: 'clientIdMismatch' };
  return { ok: true, identity };
}
