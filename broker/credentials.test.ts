import { describe, it, expect } from 'vitest';
import { authenticate, checkPassword, credentialsFor, newSecret } from './credentials.ts';
import { serverIdentity } from './topics.ts';

describe('credentials', () => {
  const secret = newSecret();

  it('issues a password that checks for its username and no other', () => {
    const { username, password } = credentialsFor(secret, { role: 'terminal', id: 'T1' });
    expect(username).toBe('tm.T1');
    expect(checkPassword(secret, username, password)).toBe(true);
    expect(checkPassword(secret, username, Buffer.from(password))).toBe(true);
    expect(checkPassword(secret, 'tm.T2', password)).toBe(false);
    expect(checkPassword(newSecret(), username, password)).toBe(false);
    expect(checkPassword(secret, username, undefined)).toBe(false);
  });

  it('authenticates a CONNECT and names the identity', () => {
    const server = credentialsFor(secret, serverIdentity([0, 1]));
    expect(authenticate(secret, server.username, server.username, server.password)).toEqual({
      ok: true,
      identity: { role: 'server', id: '0-1', shards: [0, 1] },
    });
  });

  it('refuses anonymous, unknown, wrong-password and borrowed-client-id connections', () => {
    const t1 = credentialsFor(secret, { role: 'terminal', id: 'T1' });
    expect(authenticate(secret, 'x', undefined, undefined)).toEqual({ ok: false, reason: 'anonymous' });
    expect(authenticate(secret, 'x', 'root', 'pw')).toEqual({ ok: false, reason: 'unknownUser' });
    expect(authenticate(secret, 'tm.T1', 'tm.T1', 'guess')).toEqual({ ok: false, reason: 'badPassword' });
    expect(authenticate(secret, 'tm.T2', t1.username, t1.password)).toEqual({ ok: false, reason: 'clientIdMismatch' });
  });
});
