import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import {
  aclRules,
  addressOfTopic,
  controlAckTopic,
  controlSubscriptionsOf,
  filterCovers,
  formatShardRange,
  identityOf,
  mayPublish,
  maySubscribe,
  parseAddress,
  parseShardRange,
  parseTopic,
  requestFilter,
  requestTopic,
  responseTopic,
  serverControlTopic,
  serverIdentity,
  subscriptionsOf,
  topicForSend,
  topicMatches,
  usernameOf,
  type ClientIdentity,
} from './topics.ts';
import { remitNowFor, requestsFrom, resultFor } from './testSupport.ts';

const T1: ClientIdentity = { role: 'terminal', id: 'T1' };
const P1: ClientIdentity = { role: 'pos', id: 'P1' };
const SD = serverIdentity([0, 1, 2, 3, 8]);
const HARNESS: ClientIdentity = { role: 'harness', id: 'harness' };

describe('usernames', () => {
  it('round-trips every role through its username', () => {
    expect(usernameOf(T1)).toBe('tm.T1');
    expect(usernameOf(P1)).toBe('pos.P1');
    expect(usernameOf(SD)).toBe('sd.0-3,8');
    expect(usernameOf(HARNESS)).toBe('harness');
    for (const identity of [T1, P1, SD, HARNESS]) expect(identityOf(usernameOf(identity))).toEqual(identity);
  });

  it('refuses usernames outside the scheme', () => {
    for (const bad of ['', 'T1', 'tm.', 'tm.a/b', 'tm.a:b', 'tm.a+b', 'sd.', 'sd.3-1', 'sd.x', 'pos.#', 'admin']) {
      expect(identityOf(bad), bad).toBeUndefined();
    }
  });

  it('writes and reads shard ranges', () => {
    expect(parseShardRange('0-3,8')).toEqual([0, 1, 2, 3, 8]);
    expect(parseShardRange('5,1,1')).toEqual([1, 5]);
    expect(formatShardRange([8, 3, 2, 1, 0, 10, 11])).toBe('0-3,8,10-11');
    expect(parseShardRange('70000')).toBeUndefined();
  });
});

describe('addresses and topics', () => {
  it('maps link addresses to topics and back', () => {
    expect(parseAddress('sd/7')).toEqual({ kind: 'server', shard: 7 });
    expect(parseAddress('T1')).toEqual({ kind: 'endpoint', id: 'T1' });
    expect(parseAddress('sd/07')).toBeUndefined();
    expect(parseAddress('a/b')).toBeUndefined();
    expect(requestTopic(7, T1)).toBe('pf/v1/sd/7/req/tm.T1');
    expect(responseTopic('terminal', 'T1')).toBe('pf/v1/tm/T1/resp');
    expect(responseTopic('pos', 'P1')).toBe('pf/v1/pos/P1/resp');
    expect(addressOfTopic('pf/v1/sd/7/req/tm.T1')).toBe('sd/7');
    expect(addressOfTopic('pf/v1/tm/T1/resp')).toBe('T1');
    expect(addressOfTopic('pf/v1/pos/P1/resp')).toBe('P1');
    expect(parseTopic('pf/v1/sd/7/req/pos.P1')).toEqual({ family: 'req', shard: 7, address: 'sd/7', sender: P1 });
    expect(parseTopic('pf/v1/ctl/metrics/tm.T1')).toEqual({ family: 'ctl', path: 'metrics/tm.T1' });
  });

  it('parses nothing outside the contract', () => {
    for (const bad of ['pf/v2/tm/T1/resp', 'pf/v1/tm/T1', 'pf/v1/tm/T1/resp/x', 'pf/v1/sd/x/req/tm.T1', 'pf/v1/sd/1/req', 'pf/v1/sd/1/req/bogus', 'pf/v1/ctl']) {
      expect(parseTopic(bad), bad).toBeUndefined();
    }
  });

  it('routes sends: terminals and POS to shards, a server to the endpoint the answer is for', () => {
    const requests = requestsFrom('T1');
    expect(topicForSend(T1, 'sd/3', requests.sync!)).toBe('pf/v1/sd/3/req/tm.T1');
    expect(topicForSend(P1, 'sd/3', requestsFrom('P1').settle!)).toBe('pf/v1/sd/3/req/pos.P1');
    expect(topicForSend(SD, 'T1', resultFor(requests.sync!))).toBe('pf/v1/tm/T1/resp');
    expect(topicForSend(SD, 'P1', resultFor(requestsFrom('P1').settle!))).toBe('pf/v1/pos/P1/resp');
    expect(topicForSend(SD, 'T1', remitNowFor('T1'))).toBe('pf/v1/tm/T1/resp');
    expect(topicForSend(T1, 'T2', requests.sync!)).toBeUndefined();
    expect(topicForSend(SD, 'sd/1', requests.sync!)).toBeUndefined();
    expect(topicForSend(T1, 'sd/x', requests.sync!)).toBeUndefined();
  });
});

describe('ACL', () => {
  it('matches topics and covers filters as MQTT does', () => {
    expect(topicMatches('pf/v1/sd/+/req/tm.T1', 'pf/v1/sd/4/req/tm.T1')).toBe(true);
    expect(topicMatches('pf/v1/sd/+/req/tm.T1', 'pf/v1/sd/4/req/tm.T2')).toBe(false);
    expect(topicMatches('pf/v1/#', 'pf/v1/a/b')).toBe(true);
    expect(topicMatches('pf/v1/+', 'pf/v1/a/b')).toBe(false);
    expect(filterCovers('pf/v1/sd/3/req/+', 'pf/v1/sd/3/req/+')).toBe(true);
    expect(filterCovers('pf/v1/sd/3/req/+', 'pf/v1/sd/3/req/tm.T1')).toBe(true);
    expect(filterCovers('pf/v1/sd/3/req/+', 'pf/v1/sd/+/req/+')).toBe(false);
    expect(filterCovers('pf/v1/sd/3/req/+', 'pf/v1/sd/3/#')).toBe(false);
  });

  it('lets a terminal publish only requests under its own name and read only its own answers', () => {
    expect(mayPublish(T1, 'pf/v1/sd/0/req/tm.T1')).toBe(true);
    expect(mayPublish(T1, 'pf/v1/sd/0/req/tm.T2')).toBe(false);
    expect(mayPublish(T1, 'pf/v1/sd/+/req/tm.T1')).toBe(false);
    expect(mayPublish(T1, 'pf/v1/tm/T2/resp')).toBe(false);
    expect(mayPublish(T1, 'pf/v1/tm/T1/resp')).toBe(false);
    expect(maySubscribe(T1, 'pf/v1/tm/T1/resp')).toBe(true);
    expect(maySubscribe(T1, 'pf/v1/tm/T2/resp')).toBe(false);
    expect(maySubscribe(T1, 'pf/v1/tm/+/resp')).toBe(false);
    expect(maySubscribe(T1, 'pf/v1/#')).toBe(false);
    expect(maySubscribe(T1, 'pf/v1/sd/0/req/+')).toBe(false);
  });

  it('lets a server read only its shards and write only answers', () => {
    expect(maySubscribe(SD, 'pf/v1/sd/8/req/+')).toBe(true);
    expect(maySubscribe(SD, 'pf/v1/sd/4/req/+')).toBe(false);
    expect(maySubscribe(SD, 'pf/v1/sd/+/req/+')).toBe(false);
    expect(mayPublish(SD, 'pf/v1/tm/T1/resp')).toBe(true);
    expect(mayPublish(SD, 'pf/v1/pos/P1/resp')).toBe(true);
    expect(mayPublish(SD, 'pf/v1/sd/0/req/sd.0-3,8')).toBe(false);
    expect(subscriptionsOf(SD)).toEqual(['pf/v1/sd/0/req/+', 'pf/v1/sd/1/req/+', 'pf/v1/sd/2/req/+', 'pf/v1/sd/3/req/+', 'pf/v1/sd/8/req/+']);
  });

  it('gives the harness the control topics only', () => {
    expect(mayPublish(HARNESS, 'pf/v1/ctl/cmd')).toBe(true);
    expect(maySubscribe(HARNESS, 'pf/v1/ctl/metrics/+')).toBe(true);
    expect(maySubscribe(HARNESS, 'pf/v1/sd/0/req/+')).toBe(false);
    expect(mayPublish(HARNESS, 'pf/v1/tm/T1/resp')).toBe(false);
    expect(mayPublish(T1, 'pf/v1/ctl/metrics/tm.T1')).toBe(true);
    expect(mayPublish(T1, 'pf/v1/ctl/cmd')).toBe(false);
  });

  it('lets only the harness send a server control commands, and only the server of the shard read them', () => {
    expect(serverControlTopic(8)).toBe('pf/v1/ctl/sd/8/cmd');
    expect(controlAckTopic(SD)).toBe('pf/v1/ctl/ack/sd.0-3,8');
    expect(parseTopic('pf/v1/ctl/sd/8/cmd')).toEqual({ family: 'ctlCmd', shard: 8 });
    expect(parseTopic('pf/v1/ctl/ack/sd.0-3,8')).toEqual({ family: 'ctlAck', sender: SD });
    for (const bad of ['pf/v1/ctl/sd/08/cmd', 'pf/v1/ctl/sd/x/cmd', 'pf/v1/ctl/sd/1/cmd/x', 'pf/v1/ctl/ack/tm.T1', 'pf/v1/ctl/ack/harness', 'pf/v1/ctl/ack/sd.x']) {
      expect(parseTopic(bad), bad).toBeUndefined();
    }
    expect(mayPublish(HARNESS, 'pf/v1/ctl/sd/8/cmd')).toBe(true);
    for (const other of [T1, P1, SD]) expect(mayPublish(other, 'pf/v1/ctl/sd/8/cmd'), other.role).toBe(false);
    expect(maySubscribe(SD, 'pf/v1/ctl/sd/8/cmd')).toBe(true);
    expect(maySubscribe(SD, 'pf/v1/ctl/sd/4/cmd')).toBe(false);
    expect(maySubscribe(SD, 'pf/v1/ctl/sd/+/cmd')).toBe(false);
    for (const other of [T1, P1, HARNESS]) expect(maySubscribe(other, 'pf/v1/ctl/sd/8/cmd'), other.role).toBe(false);
    expect(mayPublish(SD, 'pf/v1/ctl/ack/sd.0-3,8')).toBe(true);
    expect(mayPublish(SD, 'pf/v1/ctl/ack/sd.4')).toBe(false);
    expect(mayPublish(T1, 'pf/v1/ctl/ack/sd.0-3,8')).toBe(false);
    expect(maySubscribe(HARNESS, 'pf/v1/ctl/ack/+')).toBe(true);
    expect(maySubscribe(SD, 'pf/v1/ctl/ack/+')).toBe(false);
    expect(controlSubscriptionsOf(SD)).toEqual(['pf/v1/ctl/sd/0/cmd', 'pf/v1/ctl/sd/1/cmd', 'pf/v1/ctl/sd/2/cmd', 'pf/v1/ctl/sd/3/cmd', 'pf/v1/ctl/sd/8/cmd']);
    expect(controlSubscriptionsOf(T1)).toEqual([]);
  });

  it('subscribes every endpoint to filters its own rules allow', () => {
    for (const identity of [T1, P1, SD, HARNESS]) {
      for (const filter of [...subscriptionsOf(identity), ...controlSubscriptionsOf(identity)]) expect(maySubscribe(identity, filter)).toBe(true);
      expect(aclRules(identity).length).toBeGreaterThan(0);
    }
  });
});

describe('docs/topics.md', () => {
  const doc = readFileSync(new URL('../docs/topics.md', import.meta.url), 'utf8');

  it('lists every ACL rule the code enforces', () => {
    const generic: ClientIdentity[] = [
      { role: 'terminal', id: '{id}' },
      { role: 'pos', id: '{id}' },
      { role: 'server', id: '{range}', shards: [] },
      HARNESS,
    ];
    for (const identity of generic) {
      for (const rule of aclRules(identity)) expect(doc, `${identity.role} ${rule.access} ${rule.filter}`).toContain(`| ${rule.access} | \`${rule.filter}\` |`);
    }
    expect(doc).toContain(`\`${requestFilter(0).replace('/0/', '/{shard}/')}\``);
    expect(doc).toContain(`\`${requestTopic(0, T1).replace('/0/', '/{shard}/').replace('tm.T1', '{username}')}\``);
    expect(doc).toContain(`| read | \`${serverControlTopic(0).replace('/0/', '/{shard}/')}\`, one rule per shard of its range |`);
  });
});
