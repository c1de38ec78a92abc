import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ledger } from '../../machines/domain/ledger.ts';
import { topUpProblems } from '../../machines/domain/ledgerTopUps.ts';
import { startBroker, type RunningBroker } from '../../broker/aedes.ts';
import { newSecret } from '../../broker/credentials.ts';
import { writeRegistry, type RunRegistry } from '../sd/registry.ts';
import { SqliteLedgerStore } from '../sd/sqliteLedgerStore.ts';
import { ElsewhereSender } from './elsewhereSender.ts';
import { runPayfleet, within, type ChildRun } from '../sd/testSupport.ts';
import { wallEpochMs } from '../core/realTime.ts';
import { TopUpAgreements } from '../core/topUps.ts';
import type { TopUpRule } from '../scenario/types.ts';

// Money entering from outside on a real `payfleet server`: means whose registry entry carries a top-up agreement are
// spent down from elsewhere (the harness's control commands), and the server tops them up in the spends' own
// transactions, by the amounts the virtual SD would draw.
const SHARDS = 2;
const SEED = 5;
const RULE: TopUpRule = { belowMinor: 2_000, amount: { kind: 'uniform', minMinor: 3_000, maxMinor: 6_000 } };
const MEANS = ['m0', 'm1', 'm2', 'm3'];
const secret = newSecret();
const dir = mkdtempSync(join(tmpdir(), 'payfleet-topups-'));
// m3 has no agreement: it runs dry and its last spends are refused.
const registry: RunRegistry = {
  version: 1,
  scheme: 'ed25519',
  serverKeySeedHex: Buffer.from(new Uint8Array(32).fill(7)).toString('hex'),
  shards: SHARDS,
  publicKeys: {},
  means: MEANS.map((meansId) => ({ meansId, kind: 'prepaid' as const, openingBalanceMinor: 4_000, creditLimitMinor: 0, ...(meansId === 'm3' ? {} : { topUp: RULE }) })),
  topUpSeed: SEED,
};
const registryPath = join(dir, 'registry.json');
let broker: RunningBroker;
let server: ChildRun | undefined;
let sender: ElsewhereSender | undefined;

beforeAll(async () => {
  writeRegistry(registryPath, registry);
  broker = await startBroker({ port: 0, secret });
});

afterAll(async () => {
  await sender?.stop();
  server?.child.kill('SIGKILL');
  await broker.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('top-ups on a real payment server', () => {
  it('credits each means from outside after the spend that left it low, once, by the amount the virtual SD draws', async () => {
    const db = join(dir, 'ledger.sqlite');
    server = runPayfleet(['server', '--shards', '0-1', '--broker', broker.url, '--secret', secret, '--db', db, '--registry', registryPath]);
    await server.line(/ready on/);
    sender = new ElsewhereSender({ brokerUrl: broker.url, secret, shardCount: SHARDS, nowMs: wallEpochMs, resendAfterRealMs: 200 });
    await within(sender.start(), 15_000, 'the harness sender connecting');
    // 10 × 1,000 from 4,000: without top-ups the fifth and later are refused, as they are for m3.
    for (const meansId of MEANS) for (let n = 1; n <= 10; n++) sender.send({ transferId: `web:${meansId}:${n}`, meansId, payee: 'merchant:web', amountMinor: 1_000 });
    expect(await sender.settled(20_000)).toBe(true);
    expect(sender.counts).toMatchObject({ sent: 40, applied: 34, refused: 6, refusedByCode: { insufficientFunds: 6 } });
    server.child.kill('SIGTERM');
    expect((await within(server.exited, 15_000, 'the server exiting')).code).toBe(0);

    const store = new SqliteLedgerStore(db, { readonly: true });
    try {
      const ledger = new Ledger(store);
      const topUps = ledger.topUps()!;
      // m0-m2: 4,000 − 3 × 1,000 leaves 1,000 < 2,000 after the third spend, which asks for the first top-up.
      for (const meansId of ['m0', 'm1', 'm2']) expect(topUps.some((t) => t.id === `top:ext:web:${meansId}:3`), meansId).toBe(true);
      expect(topUps.some((t) => t.creditAccount === 'means:m3')).toBe(false);
      const agreements = new TopUpAgreements(SEED);
      for (const meansId of MEANS) agreements.add(meansId, meansId === 'm3' ? null : RULE);
      for (const t of topUps) expect(t.amountMinor, t.id).toBe(agreements.rules(t.creditAccount.slice('means:'.length))!.amountMinor(t.id));
      // [INV-3] what came in from outside is the recorded top-ups, each due to a spend of its means.
      expect(topUpProblems({ outsideBalanceMinor: ledger.outsideBalanceMinor(), topUps, store }, (m) => m !== 'm3').problems).toEqual([]);
      expect(ledger.sumOfBalancesMinor()).toBe(0);
    } finally {
      store.close();
    }
  }, 60_000);
});
