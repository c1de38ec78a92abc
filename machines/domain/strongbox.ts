// Goal: the patent's strongbox — move the proxy's state to a new terminal when the SIM moves, readable only
// with the user's password.
// Method: scrypt derives a key from the password and a salt; AES-256-GCM encrypts the JSON state and
// authenticates it, so a wrong password or a tampered box is refused instead of restoring garbage. Salt and IV
// are passed in (drawn from the run's seed by the caller), which keeps seeded runs reproducible.

import { createCipheriv, createDecipheriv, scryptSync } from 'node:crypto';
import { DomainError } from './money.ts';

export interface Strongbox {
  version: 1;
  salt: string;
  iv: string;
  tag: string;
  data: string;
}

// Modest scrypt cost: a SIM move is rare, but a simulated fleet may move thousands of SIMs.
const SCRYPT = { N: 1 << 12, r: 8, p: 1 } as const;

function keyFor(password: string, salt: Buffer): Buffer {
  return scryptSync(password, salt, 32, SCRYPT);
}

export function sealStrongbox(state: unknown, password: string, salt: Uint8Array, iv: Uint8Array): Strongbox {
  if (salt.length < 16 || iv.length !== 12) throw new DomainError('badStrongbox', 'salt must be ≥16 bytes and iv 12 bytes', { salt: salt.length, iv: iv.length });
  const cipher = createCipheriv('aes-256-gcm', keyFor(password, Buffer.from(salt)), iv);
  const data = Buffer.concat([cipher.update(JSON.stringify(state), 'utf8'), cipher.final()]);
  return { version: 1, salt: Buffer.from(salt).toString('base64'), iv: Buffer.from(iv).toString('base64'), tag: cipher.getAuthTag().toString('base64'), data: data.toString('base64') };
}

export function openStrongbox(box: Strongbox, password: string): unknown {
  try {
    const decipher = createDecipheriv('aes-256-gcm', keyFor(password, Buffer.from(box.salt, 'base64')), Buffer.from(box.iv, 'base64'));
    decipher.setAuthTag(Buffer.from(box.tag, 'base64'));
    const text = Buffer.concat([decipher.update(Buffer.from(box.data, 'base64')), decipher.final()]).toString('utf8');
    return JSON.parse(text);
  } catch {
    throw new DomainError('strongboxRefused', 'wrong password or tampered strongbox', box.version);
  }
}
