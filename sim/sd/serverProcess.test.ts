import { afterAll, beforeAll, describe, it, expect } from 'vitest';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { shardOf } from '../../machines/link.ts';
import { Ledger, meansAccount } from '../../machines/domain/ledger.ts';
import { signProof, signRequest, verifyResult } from '../../machines/domain/requests.ts';
import { keyFromSeed, signClaim, type PaymentClaim, type SigningKey } from '../../machines/domain/signature.ts';
import type { DebitRequest, Proof, RemitRequest, ServerRequest, ServerResult, SyncRequest } from '../../machines/messages.ts';
import { startBroker, type RunningBroker } from '../../broker/aedes.ts';
import { newSecret } from '../../broker/credentials.ts';
import { createMqttLink } from '../../broker/mqttLink.ts';
import { hostLink, type LinkHost } from '../../broker/testSupport.ts';
import { writeRegistry, type RunRegistry } from './registry.ts';
import { main } from '../cli/main.ts';
import type { CliIo } from '../cli/command.ts';
import { SqliteLedgerStore } from './sqliteLedgerStore.ts';
import { runPayfleet, type ChildRun } from './testSupport.ts';
import { PostgresLedgerStore } from './postgresLedgerStore.ts';
import { startPostgresTestCluster, type PostgresTestCluster } from './postgresTestCluster.ts';

const SHARDS = 4;
const OPENING_MINOR = 1_000_000;
const secret = newSecret();
const dir = mkdtempSync(join(tmpdir(), 'payfleet-server-'));
const serverSeed = new Uint8Array(32).fill(9);
const serverKey = keyFromSeed('ed25519', serverSeed);

/** Eight proxies T0..T7, each with one prepaid means `T{i}.m`, and a POS; ed25519 keys as in a real run. */
const proxyKeys = new Map<string, SigningKey>(Array.from({ length: 8 }, (_, i) => [`T${i}`, keyFromSeed('ed25519', new Uint8Array(32).fill(i + 20))]));
const registry: RunRegistry = {
  version: 1,
  scheme: 'ed25519',
  serverKeySeedHex: Buffer.from(serverSeed).toString('hex'),
  shards: SHARDS,
  publicKeys: Object.fromEntries([...proxyKeys].map(([id, key]) => [id, key.publicKey])),
  means: [...proxyKeys.keys()].map((id) => ({ meansId: `${id}.m`, kind: 'prepaid' as const, openingBalanceMinor: OPENING_MINOR, creditLimitMinor: 0 })),
};
const registryPath = join(dir, 'registry.json');
const shardOfProxy = (id: string) => shardOf(`${id}.m`, SHARDS);

let broker: RunningBroker;
const children: ChildRun[] = [];
const hosts: LinkHost[] = [];

beforeAll(async () => {
  writeRegistry(registryPath, registry);
  broker = await startBroker({ port: 0, secret });
});

afterAll(async () => {
  for (const h of hosts) h.stop();
  for (const c of children) c.child.kill('SIGKILL');
  await broker.close();
  rmSync(dir, { recursive: true, force: true });
});

function startServer(shards: string, db: string, extra: string[] = []): ChildRun {
  const run = runPayfleet(['server', '--shards', shards, '--broker', broker.url, '--secret', secret, '--db', db, '--registry', registryPath, ...extra]);
  children.push(run);
  return run;
}

// ------------------------------------------------------------------ a terminal's side: signed requests over a real link

const terminalLink = (url: string) => createMqttLink({ url, secret, seed: 3, backoff: { initialMs: 10, maxMs: 100, multiplier: 2 } });

class Terminal {
  readonly host: LinkHost;
  private counter = 0;
  private seq = 0;
  /** Every answer received, by reqId, in order (a resend can draw a second answer; it must be the same). */
  readonly answers = new Map<string, ServerResult[]>();
  private readonly waiters = new Map<string, () => void>();

  constructor(
    readonly id: string,
    url = broker.url,
  ) {
    this.host = hostLink(terminalLink(url), { endpointId: id, role: 'terminal', inCoverage: true });
    hosts.push(this.host);
    let seen = 0;
    // The host records events; a short poll hands each new answer to whoever waits for its reqId.
    const poll = setInterval(() => {
      for (; seen < this.host.events.length; seen++) {
        const event = this.host.events[seen]!;
        if (event.type !== 'link.message' || event.message.kind !== 'result') continue;
        const list = this.answers.get(event.message.reqId) ?? [];
        list.push(event.message);
        this.answers.set(event.message.reqId, list);
        this.waiters.get(event.message.reqId)?.();
      }
    }, 5);
    poll.unref();
  }

  get key(): SigningKey {
    return proxyKeys.get(this.id)!;
  }

  up(): Promise<unknown> {
    return this.host.next('link.up');
  }

  /** Ends the link: a later Terminal with the same id must not fight this one for the client id. */
  stop(): void {
    this.host.stop();
  }

  claim(kind: string, amountMinor: number): PaymentClaim {
    const counter = ++this.counter;
    return { txId: `${this.id}:${kind}${counter}`, amountMinor, payee: 'shop', timeMs: 1_000 + counter, counter, proxyId: this.id, meansId: `${this.id}.m` };
  }

  proof(amountMinor: number): Proof {
    const claim = this.claim('l', amountMinor);
    return signProof(this.key, claim, 'localOffline');
  }

  debit(amountMinor: number): DebitRequest {
    return signRequest<DebitRequest>(this.key, { kind: 'debit', from: this.id, reqId: `q${++this.seq}`, claim: this.claim('d', amountMinor) });
  }

  remitGrouped(amounts: number[]): RemitRequest {
    return signRequest<RemitRequest>(this.key, { kind: 'remit', mode: 'grouped', from: this.id, reqId: `q${++this.seq}`, transactions: amounts.map((a) => this.proof(a)) });
  }

  remitAggregate(sumMinor: number, count: number): RemitRequest {
    const claims = Array.from({ length: count }, () => this.claim('g', 0));
    const aggregates = [{ meansId: `${this.id}.m`, payee: 'shop', sumMinor, txIds: claims.map((c) => c.txId), counters: claims.map((c) => c.counter) }];
    return signRequest<RemitRequest>(this.key, { kind: 'remit', mode: 'aggregate', from: this.id, reqId: `q${++this.seq}`, aggregates });
  }

  sync(): SyncRequest {
    return signRequest<SyncRequest>(this.key, { kind: 'sync', from: this.id, reqId: `q${++this.seq}`, meansId: `${this.id}.m` });
  }

  send(request: ServerRequest): void {
    this.host.send({ type: 'link.send', to: `sd/${shardOfProxy(this.id)}`, message: request });
  }

  /** Sends `request` and resends it every `retryMs` until an answer comes, as a proxy's outbox does. */
  ask(request: ServerRequest, retryMs = 300, giveUpMs = 30_000): Promise<ServerResult> {
    return new Promise((resolve, reject) => {
      const done = () => {
        clearInterval(resend);
        clearTimeout(giveUp);
        this.waiters.delete(request.reqId);
        resolve(this.answers.get(request.reqId)![0]!);
      };
      const resend = setInterval(() => this.send(request), retryMs);
      const giveUp = setTimeout(() => {
        clearInterval(resend);
        reject(new Error(`${this.id}: no answer to ${request.reqId} after ${giveUpMs} ms`));
      }, giveUpMs);
      this.waiters.set(request.reqId, done);
      if (this.answers.has(request.reqId)) done();
      else this.send(request);
    });
  }
}

/** What a request takes from its means when it is answered ok. */
function spentBy(request: ServerRequest): number {
  if (request.kind === 'debit') return request.claim.amountMinor;
  if (request.kind === 'remit') return request.mode === 'grouped' ? request.transactions.reduce((s, t) => s + t.amountMinor, 0) : request.aggregates.reduce((s, a) => s + a.sumMinor, 0);
  return 0;
}

function capture(): CliIo & { lines: string[]; errors: string[] } {
  const lines: string[] = [];
  const errors: string[] = [];
  return { lines, errors, out: (l) => lines.push(l), err: (l) => errors.push(l), env: {} };
}

/** `payfleet server …` through the CLI's main, as the command line runs it (flags parsed in sim/cli). */
const serverCommand = (argv: string[], io: CliIo) => main(['server', ...argv], io);

// ------------------------------------------------------------------ bad input

describe('payfleet server: bad input is exit status 2, naming the flag, file or field', () => {
  const good = () => ['--shards', '0-3', '--broker', 'mqtt://127.0.0.1:1', '--secret', 's', '--db', join(dir, 'unused.db'), '--registry', registryPath];
  const cases: Array<[string, string[], RegExp]> = [
    ['a missing --shards', good().slice(2), /--shards: required/],
    ['a malformed --shards', ['--shards', '3-1', ...good().slice(2)], /--shards: expected a range/],
    ['a shard outside the registry', ['--shards', '2-4', ...good().slice(2)], /--shards: shard 4 is outside the 4 shards of the registry/],
    ['a broker that is no URL', ['--shards', '0', '--broker', 'localhost', ...good().slice(4)], /--broker: expected a broker URL/],
    ['a broker URL of another protocol', ['--shards', '0', '--broker', 'http://x:1', ...good().slice(4)], /--broker: expected a broker URL such as mqtt:\/\/127.0.0.1:1883 \(mqtt, mqtts, tcp, ws or wss\), got 'http:\/\/x:1'/],
    ['no secret', [...good().slice(0, 4), ...good().slice(6)], /--secret: required/],
    ['a missing --db', [...good().slice(0, 6), ...good().slice(8)], /--db: required/],
    ['a missing --registry', good().slice(0, 8), /--registry: required/],
    ['an unknown flag', [...good(), '--shard', '1'], /unknown flag --shard /],
    ['a flag without its value', [...good(), '--seed'], /--seed: expected a value/],
    ['a seed out of range', [...good(), '--seed=1000000000'], /--seed: expected an integer from 0 to 999999999, got '1000000000'/],
    ['a bad --synchronous', [...good(), '--synchronous', 'off'], /--synchronous: expected full or normal/],
    ['a bad --commit', [...good(), '--commit', 'never'], /--commit: expected group or each/],
    ['a stray argument', [...good(), 'extra'], /unexpected argument 'extra'/],
    ['both --db and --ledger', [...good(), '--ledger', 'sqlite:/tmp/x.db'], /--db and --ledger: give one of them/],
    ['a --ledger of an unknown engine', [...good().slice(0, 6), ...good().slice(8), '--ledger', 'mysql://h/db'], /--ledger: unknown ledger engine/],
    ['a --ledger schema that is no name', [...good().slice(0, 6), ...good().slice(8), '--ledger', 'postgres://h/db?schema=Bad-1'], /--ledger: schema "Bad-1"/],
  ];
  for (const [what, argv, message] of cases) {
    it(`refuses ${what}`, async () => {
      const io = capture();
      expect(await serverCommand(argv, io)).toBe(2);
      expect(io.errors.join('\n')).toMatch(message);
      expect(existsSync(join(dir, 'unused.db'))).toBe(false);
    });
  }

  it('names the registry file, and the field, when the registry is unreadable or wrong', async () => {
    const missing = join(dir, 'no-registry.json');
    let io = capture();
    expect(await serverCommand([...good().slice(0, 8), '--registry', missing], io)).toBe(2);
    expect(io.errors[0]).toContain(missing);
    const wrong = join(dir, 'wrong-registry.json');
    writeFileSync(wrong, JSON.stringify({ ...registry, means: [{ ...registry.means[0], kind: 'gold' }] }));
    io = capture();
    expect(await serverCommand([...good().slice(0, 8), '--registry', wrong], io)).toBe(2);
    expect(io.errors[0]).toContain(`${wrong}: means[0].kind: expected prepaid, postpaid`);
  });

  it('names the ledger file when it is not a ledger, or is the ledger of another shard range', async () => {
    const text = join(dir, 'text.db');
    writeFileSync(text, 'this is not a database, it is a text file long enough to hold a header');
    let io = capture();
    expect(await serverCommand([...good().slice(0, 6), '--db', text, '--registry', registryPath], io)).toBe(2);
    expect(io.errors[0]).toMatch(new RegExp(`--db: .*${text}`));

    const other = join(dir, 'other-range.db');
    const store = new SqliteLedgerStore(other);
    store.putMeta('shards', '0-1');
    store.close();
    io = capture();
    expect(await serverCommand(['--shards', '0-3', ...good().slice(2, 6), '--db', other, '--registry', registryPath], io)).toBe(2);
    expect(io.errors[0]).toContain(`--db: ${other} is the ledger of another server (shards 0-1, this one 0-3)`);
  });

  it('prints its help with exit status 0', async () => {
    const io = capture();
    expect(await serverCommand(['--help'], io)).toBe(0);
    expect(io.lines[0]).toContain('usage: payfleet server --shards RANGE --broker URL (--db PATH | --ledger SPEC) --registry FILE [--secret S]');
    for (const flag of ['--shards RANGE', '--broker URL', '--secret S', '--db PATH', '--ledger SPEC', '--registry FILE', '--synchronous full|normal', '--commit group|each', '--seed <n>', '-h, --help']) {
      expect(io.lines[0]).toContain(flag);
    }
  });

  it('exits with status 2 as a real process too', async () => {
    const run = runPayfleet(['server', '--shards', 'x']);
    expect((await run.exited).code).toBe(2);
    expect(run.stderr.join('\n')).toContain('--shards: expected a range');
  });
});

// ------------------------------------------------------------------ serving

describe('payfleet server as a process on the embedded broker', () => {
  it('answers signed debits and remittances with signed results, each committed before it is sent; stops cleanly on SIGTERM', async () => {
    // Two processes split the shards; each opens only its own shards' means.
    const dbs = { '0-1': join(dir, 'sd-0-1.db'), '2-3': join(dir, 'sd-2-3.db') };
    const servers = Object.entries(dbs).map(([range, db]) => ({ range, db, run: startServer(range, db) }));
    for (const s of servers) expect(await s.run.line(/ready on/)).toBe(`payfleet server: shards ${s.range} ready on ${broker.url}`);
    const readers = Object.fromEntries(servers.map((s) => [s.range, new SqliteLedgerStore(s.db, { readonly: true })]));
    const rangeOf = (id: string) => (shardOfProxy(id) <= 1 ? '0-1' : '2-3');

    const ids = [...proxyKeys.keys()];
    expect(new Set(ids.map(rangeOf)).size).toBe(2);
    for (const [range, reader] of Object.entries(readers)) {
      const opened = new Ledger(reader).balances().map((b) => b.meansId).sort();
      expect(opened).toEqual(ids.filter((id) => rangeOf(id) === range).map((id) => `${id}.m`).sort());
    }

    const terminals = ids.map((id) => new Terminal(id));
    await Promise.all(terminals.map((t) => t.up()));
    for (const t of terminals) {
      const requests = [t.debit(1_250), t.remitGrouped([300, 200]), t.remitAggregate(900, 3), t.sync()];
      for (const request of requests) {
        const result = await t.ask(request);
        expect(result, `${t.id} ${request.kind}`).toMatchObject({ reqId: request.reqId, to: t.id, requestKind: request.kind, ok: true, code: 'ok' });
        expect(verifyResult('ed25519', serverKey.publicKey, result)).toBe(true);
        // The answer is on disk by the time it arrives: another connection to the file reads it back.
        expect(readers[rangeOf(t.id)]!.getResult(t.id, request.reqId)?.result).toEqual(result);
      }
      const synced = t.answers.get(requests[3]!.reqId)![0]!;
      expect(synced.balances).toEqual([{ meansId: `${t.id}.m`, availableMinor: OPENING_MINOR - 1_250 - 500 - 900, version: expect.any(Number) }]);
    }

    // A forged request (the amount altered after signing) is refused, signed, and changes nothing [INV-6].
    const t0 = terminals[0]!;
    const forged = { ...t0.debit(10), claim: { ...t0.debit(10).claim } };
    forged.claim.amountMinor = 99_999;
    const refused = await t0.ask(forged);
    expect(refused).toMatchObject({ ok: false, code: 'badSignature' });
    expect(verifyResult('ed25519', serverKey.publicKey, refused)).toBe(true);
    expect(new Ledger(readers[rangeOf(t0.id)]!).postingOf(forged.claim.txId)).toBeUndefined();

    for (const t of terminals) t.stop();
    for (const s of servers) s.run.child.kill('SIGTERM');
    for (const s of servers) {
      expect((await s.run.exited).code).toBe(0);
      const stopped = s.run.stdout.find((l) => l.includes('stopped (SIGTERM)'));
      expect(stopped).toBeDefined();
      // Counted per shard: four requests per terminal of its range (plus the forged one).
      const handled = JSON.parse(/handled (\{[^}]*\})/.exec(stopped!)![1]!) as Record<string, number>;
      const expected: Record<string, number> = {};
      for (const id of ids.filter((i) => rangeOf(i) === s.range)) expected[String(shardOfProxy(id))] = (expected[String(shardOfProxy(id))] ?? 0) + 4 + (id === t0.id ? 1 : 0);
      expect(handled).toEqual(expected);
    }
    for (const reader of Object.values(readers)) reader.close();
    for (const s of servers) {
      const store = new SqliteLedgerStore(s.db, { readonly: true });
      const ledger = new Ledger(store);
      expect(ledger.sumOfBalancesMinor()).toBe(0);
      // debit 1, grouped 2, aggregate 3 postings per terminal.
      expect(ledger.postings()).toHaveLength(6 * ids.filter((id) => rangeOf(id) === s.range).length);
      store.close();
    }
  });

  it('rides out a broker that dies and comes back on the same port, and answers again', async () => {
    const own = await startBroker({ port: 0, secret });
    const port = own.port;
    const db = join(dir, 'broker-restart.db');
    const run = runPayfleet(['server', '--shards', '0-3', '--broker', own.url, '--secret', secret, '--db', db, '--registry', registryPath]);
    children.push(run);
    await run.line(/ready on/);
    await own.close();
    await run.line(/link down/);
    const again = await startBroker({ port, secret });
    try {
      await run.line(/link up again/);
      const t = new Terminal('T5', again.url);
      await t.up();
      const answer = await t.ask(t.debit(700));
      expect(answer).toMatchObject({ ok: true, code: 'ok' });
      t.stop();
      run.child.kill('SIGINT');
      expect((await run.exited).code).toBe(0);
      expect(run.stdout.at(-1)).toMatch(/stopped \(SIGINT\); handled \{"\d+":1\}/);
    } finally {
      await again.close();
    }
  });

  for (const commit of ['group', 'each']) {
    it(`killed with SIGKILL in the middle of a stream and restarted on the same file: the same answers again, nothing lost or doubled (commit ${commit})`, async () => {
      const db = join(dir, `crash-${commit}.db`);
      let server = startServer('0-3', db, ['--commit', commit]);
      await server.line(/ready on/);
      const terminals = [...proxyKeys.keys()].slice(0, 4).map((id) => new Terminal(`${id}`));
      await Promise.all(terminals.map((t) => t.up()));

      // Each terminal sends its requests one after another, resending until answered, like a proxy's outbox.
      const PER_TERMINAL = 40;
      const sent = new Map<string, ServerRequest[]>(terminals.map((t) => [t.id, []]));
      let answered = 0;
      const streams = terminals.map(async (t) => {
        for (let j = 0; j < PER_TERMINAL; j++) {
          const request = j % 4 === 2 ? t.remitGrouped([40, 60]) : j % 4 === 3 ? t.remitAggregate(70, 2) : t.debit(100 + j);
          sent.get(t.id)!.push(request);
          await t.ask(request, 200);
          answered++;
        }
      });
      // Kill it when about a third of the stream is answered, with requests in flight.
      const total = PER_TERMINAL * terminals.length;
      while (answered < total / 3) await new Promise((r) => setTimeout(r, 2));
      server.child.kill('SIGKILL');
      expect((await server.exited).signal).toBe('SIGKILL');
      const answeredAtKill = answered;
      expect(answeredAtKill).toBeLessThan(total);
      server = startServer('0-3', db, ['--commit', commit]);
      await server.line(/ready on/);
      await Promise.all(streams);

      // Every request got an answer, ok, and every answer it got (resends included) is the same one.
      for (const t of terminals) {
        for (const request of sent.get(t.id)!) {
          const answers = t.answers.get(request.reqId)!;
          expect(answers[0], request.reqId).toMatchObject({ ok: true, code: 'ok' });
          for (const again of answers) expect(again).toEqual(answers[0]);
        }
      }
      // Resent once more after the restart, all at once, every request gets exactly its first answer back.
      await Promise.all(
        terminals.map(async (t) => {
          const requests = sent.get(t.id)!;
          const firstAnswers = requests.map((r) => t.answers.get(r.reqId)![0]!);
          for (const request of requests) t.answers.delete(request.reqId);
          expect(await Promise.all(requests.map((r) => t.ask(r, 2_000)))).toEqual(firstAnswers);
        }),
      );
      for (const t of terminals) t.stop();

      server.child.kill('SIGTERM');
      expect((await server.exited).code).toBe(0);
      const store = new SqliteLedgerStore(db, { readonly: true });
      const ledger = new Ledger(store);
      // [INV-3 conservation] and [INV-4]: every payment is on the ledger once, each means down by exactly what it paid.
      expect(ledger.sumOfBalancesMinor()).toBe(0);
      const postings = ledger.postings();
      for (const t of terminals) {
        const requests = sent.get(t.id)!;
        const txIds = requests.flatMap((r) => (r.kind === 'debit' ? [r.claim.txId] : r.kind === 'remit' ? (r.mode === 'grouped' ? r.transactions.map((x) => x.txId) : r.aggregates.flatMap((a) => a.txIds)) : []));
        expect(txIds.filter((txId) => ledger.postingOf(txId) === undefined), t.id).toEqual([]);
        expect(postings.filter((p) => p.meansId === `${t.id}.m`)).toHaveLength(txIds.length);
        const spent = requests.reduce((sum, r) => sum + spentBy(r), 0);
        expect(ledger.accountOf(meansAccount(`${t.id}.m`))?.balanceMinor).toBe(OPENING_MINOR - spent);
        expect(ledger.accountOf('payee:shop')).toBeDefined();
      }
      store.close();
    });
  }
});

// ------------------------------------------------------------------ on PostgreSQL

describe('payfleet server on a PostgreSQL ledger (--ledger postgres://…)', () => {
  let cluster: PostgresTestCluster;
  beforeAll(async () => {
    cluster = await startPostgresTestCluster();
  }, 120_000);
  afterAll(() => cluster?.remove());

  it('answers after each commit, readable over a read-only connection, and rides out a PostgreSQL crash with nothing lost or twice', async () => {
    const run = runPayfleet(['server', '--shards', '0-3', '--broker', broker.url, '--secret', secret, '--ledger', cluster.url, '--registry', registryPath]);
    children.push(run);
    await run.line(/ready on/);
    // The schema is the one named after the shard range; the end checks read it over a read-only session.
    const reader = new PostgresLedgerStore(cluster.url, { schema: 'payfleet_shards_0_3', readonly: true });
    const t = new Terminal('T6');
    await t.up();
    const before = t.debit(1_000);
    const first = await t.ask(before);
    expect(first).toMatchObject({ ok: true, code: 'ok' });
    expect(reader.getResult(t.id, before.reqId)?.result).toEqual(first);

    // PostgreSQL crashes: a request sent now is not answered while it is down (no answer before a commit) ...
    cluster.stop('immediate');
    const during = t.debit(2_000);
    const answered = t.ask(during);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(t.answers.has(during.reqId)).toBe(false);
    // ... and is answered once it is back, the payment on the ledger once though the terminal resent it meanwhile.
    cluster.start();
    expect(await answered).toMatchObject({ ok: true, code: 'ok' });
    const ledger = new Ledger(reader);
    expect(ledger.postings().filter((p) => p.meansId === 'T6.m').map((p) => p.txId)).toEqual([before.claim.txId, during.claim.txId]);
    expect(ledger.balanceOf('T6.m').availableMinor).toBe(OPENING_MINOR - 3_000);
    expect(reader.sumOfBalancesMinor()).toBe(0);
    expect(reader.getResult(t.id, during.reqId)?.result).toEqual(t.answers.get(during.reqId)![0]);
    reader.close();
    t.stop();
    run.child.kill('SIGTERM');
    expect((await run.exited).code).toBe(0);
  }, 120_000);
});
