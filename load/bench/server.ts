// Goal: the payment-server process's cost per request, without the broker or the swarm around it: N signed
// debit requests through the domain's `handleRequest` and the group-commit ledger actor of
// sim/sd/groupCommit.ts, on a fresh SQLite ledger file in a temporary directory, as `payfleet server`
// serves them. It tells how much of a request's cost is the ledger's SQL, and whether a change to the store
// made it cheaper.
// Method: one means per simulated terminal, opened as the server opens them; requests are made and signed
// before the clock starts, then sent to the real group-commit actor in batches of --batch (one event-loop turn
// each, so one commit each), the next batch only once every answer of the previous one came back, as a busy
// server sees them. Every --refuse-every'th request asks for more than its means holds (a refusal, so a
// savepoint rolled back inside the batch) and every --resend-every'th is a resend of an earlier one (answered
// from its stored answer). Wall time and process CPU time (user + system) are read here and only here:
// benchmarks measure, the code under test never reads the clock. Prints requests/s, CPU µs per request, and
// wall ms per batch with its p50/p99 (a batch's time from its requests sent to its answers back: its commit
// latency as the senders see it); `--store memory` runs the same requests on the in-memory store, the floor
// under the SQL. `--ledger postgres://…` runs, in one invocation, the same requests on SQLite FULL, SQLite
// NORMAL, PostgreSQL synchronous_commit on and off (a fresh schema each, dropped after), one JSON line each and a
// table; for a local PostgreSQL it adds the CPU its server process (the session's backend) spent per request,
// read from /proc, since the client's CPU alone hides the database's share.
// Flags are read with the CLI's one parser (sim/cli/args.ts): a bad one is exit status 2 naming it.
//
//   node --import tsx load/bench/server.ts [--requests N] [--batch B] [--means M] [--synchronous full|normal]
//     [--commit group|each] [--store sqlite|memory] [--ledger postgres://…] [--crypto sim|ed25519]
//     [--refuse-every K] [--resend-every K]

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createActor, setup, type AnyActorRef } from 'xstate';
import { Ledger } from '../../machines/domain/ledger.ts';
import { MemoryLedgerStore, type LedgerStore } from '../../machines/domain/ledgerStore.ts';
import { signRequest } from '../../machines/domain/requests.ts';
import { keyFromSeed, type SignatureScheme } from '../../machines/domain/signature.ts';
import type { DebitRequest, ServerRequest } from '../../machines/messages.ts';
import { createLedgerActor, type LedgerActorInput, type LedgerCommand, type LedgerEvent } from '../../machines/server.ts';
import { createGroupCommitLedgerActor } from '../../sim/sd/groupCommit.ts';
import { SqliteLedgerStore } from '../../sim/sd/sqliteLedgerStore.ts';
import { PostgresLedgerStore } from '../../sim/sd/postgresLedgerStore.ts';
import { defineFlags, UsageError } from '../../sim/cli/args.ts';
import { parseScriptArgs } from '../../sim/cli/command.ts';

const FLAGS = defineFlags({
  requests: { kind: 'int', min: 1, help: 'requests sent in all', defaultText: '20000' },
  batch: { kind: 'int', min: 1, help: 'requests per event-loop turn (one commit each with --commit group)', defaultText: '8' },
  means: { kind: 'int', min: 1, help: 'means opened, one per simulated terminal', defaultText: '400' },
  payees: { kind: 'int', min: 1, help: 'distinct payees', defaultText: '20' },
  synchronous: { kind: 'string', oneOf: ['full', 'normal'], help: "SQLite's durability", defaultText: 'full' },
  commit: { kind: 'string', oneOf: ['group', 'each'], help: 'the ledger child: group commit or one commit per request', defaultText: 'group' },
  store: { kind: 'string', oneOf: ['sqlite', 'memory'], help: 'the store (memory: the floor under the SQL)', defaultText: 'sqlite' },
  ledger: {
    kind: 'string',
    placeholder: 'URL',
    parse: (text: string) => {
      if (!/^postgres(ql)?:\/\//.test(text)) throw new UsageError(`--ledger: expected postgres://…, got '${text}'`, 'ledger');
      return text;
    },
    help: 'postgres://…: run the same requests on SQLite FULL and NORMAL and PostgreSQL synchronous_commit on and off (a fresh schema each), side by side',
  },
  crypto: { kind: 'string', oneOf: ['sim', 'ed25519'], help: 'signatures of requests and answers', defaultText: 'sim' },
  'refuse-every': { kind: 'int', help: "every k'th request is refused (0: none)", defaultText: '20' },
  'resend-every': { kind: 'int', help: "every k'th request is a resend (0: none)", defaultText: '50' },
  help: { kind: 'boolean', short: 'h', help: 'show this help' },
});

const { flags } = parseScriptArgs(
  'bench:server',
  'npm run bench:server -- [options]',
  "The payment-server process's cost per request: signed debits through the group-commit ledger actor on a fresh SQLite file.",
  FLAGS,
  process.argv.slice(2),
);

const REQUESTS = flags.requests ?? 20_000;
const BATCH = flags.batch ?? 8;
const MEANS = flags.means ?? 400;
const PAYEES = flags.payees ?? 20;
const SYNCHRONOUS = flags.synchronous ?? 'full';
const COMMIT = flags.commit ?? 'group';
const STORE = flags.store ?? 'sqlite';
const CRYPTO: SignatureScheme = flags.crypto ?? 'sim';
const REFUSE_EVERY = flags['refuse-every'] ?? 20;
const RESEND_EVERY = flags['resend-every'] ?? 50;
const OPENING_MINOR = 1_000_000_000;

const seed = (n: number) => new Uint8Array(32).fill(n);
const serverKey = keyFromSeed(CRYPTO, seed(200));
const proxyKeys = Array.from({ length: MEANS }, (_, i) => keyFromSeed(CRYPTO, seed(i % 199)));
const proxyIndex = new Map(proxyKeys.map((_, i) => [`p${i}`, i]));
const input: LedgerActorInput = {
  key: serverKey,
  scheme: CRYPTO,
  publicKeyOf: (id) => {
    const i = proxyIndex.get(id);
    return i === undefined ? undefined : proxyKeys[i]!.publicKey;
  },
  // A fixed time: the server stamps nothing with it that this benchmark reads.
  now: () => 1_700_000_000_000,
};

/** The requests, made and signed before timing: debits, some refused, some resent. */
function makeRequests(): ServerRequest[] {
  const requests: ServerRequest[] = [];
  const counters = new Array<number>(MEANS).fill(0);
  for (let k = 0; k < REQUESTS; k++) {
    if (RESEND_EVERY > 0 && k > 0 && k % RESEND_EVERY === 0) {
      requests.push(requests[k - RESEND_EVERY + 1]!);
      continue;
    }
    const m = k % MEANS;
    const counter = ++counters[m]!;
    const refused = REFUSE_EVERY > 0 && k % REFUSE_EVERY === REFUSE_EVERY - 1;
    const amountMinor = refused ? OPENING_MINOR * 2 : 1 + (k % 97);
    const claim = { txId: `p${m}.t${counter}`, amountMinor, payee: `shop${k % PAYEES}`, timeMs: k, counter, proxyId: `p${m}`, meansId: `m${m}` };
    requests.push(signRequest<DebitRequest>(proxyKeys[m]!, { kind: 'debit', from: `p${m}`, reqId: `r${counter}`, claim }));
  }
  return requests;
}

interface Config { store: 'sqlite' | 'memory' | 'postgres'; synchronous: 'full' | 'normal' }
const POSTGRES_URL = flags.ledger;

/** CPU time (µs) of a local process so far, from /proc (utime + stime, in clock ticks of 10 ms). */
function processCpuUs(pid: number): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  } catch {
    return undefined;
  }
}

const percentile = (sorted: readonly number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;

async function main(config: Config): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'payfleet-bench-server-'));
  const schema = `bench_${process.pid}_${config.synchronous}`;
  const store: LedgerStore & { close?: () => void } =
    config.store === 'sqlite' ? new SqliteLedgerStore(join(dir, 'ledger.db'), { synchronous: config.synchronous })
    : config.store === 'postgres' ? new PostgresLedgerStore(POSTGRES_URL!, { schema, synchronousCommit: config.synchronous === 'full' ? 'on' : 'off' })
    : new MemoryLedgerStore();
  const backendPid = store instanceof PostgresLedgerStore && /@(127\.0\.0\.1|localhost)[:/]/.test(POSTGRES_URL!) ? Number(store.connection.query('SELECT pg_backend_pid()')[0]![0]) : undefined;
  const ledger = new Ledger(store);
  store.transaction(() => {
    for (let m = 0; m < MEANS; m++) ledger.openMeans({ meansId: `m${m}`, kind: 'prepaid', openingBalanceMinor: OPENING_MINOR, creditLimitMinor: 0 });
  });
  const requests = makeRequests();

  let waiting = 0;
  let release: () => void = () => undefined;
  const outcomes = new Map<string, number>();
  const child = COMMIT === 'group' ? createGroupCommitLedgerActor(ledger) : createLedgerActor(ledger);
  const machine = setup({ actors: { ledger: child } }).createMachine({
    invoke: { src: 'ledger', id: 'ledger', input },
    on: {
      'ledger.result': {
        actions: ({ event }) => {
          const code = (event as unknown as LedgerEvent).result.code;
          outcomes.set(code, (outcomes.get(code) ?? 0) + 1);
          if (--waiting === 0) release();
        },
      },
    },
  });
  const actor = createActor(machine).start();
  const ledgerRef = actor.getSnapshot().children.ledger as AnyActorRef;

  const serverCpuBefore = backendPid === undefined ? undefined : processCpuUs(backendPid);
  const cpuBefore = process.cpuUsage();
  const wallBefore = performance.now();
  let batches = 0;
  const batchMs: number[] = [];
  for (let start = 0; start < requests.length; start += BATCH) {
    const batch = requests.slice(start, start + BATCH);
    const answered = new Promise<void>((resolve) => (release = resolve));
    waiting = batch.length;
    const sentMs = performance.now();
    for (const request of batch) ledgerRef.send({ type: 'ledger.apply', request } satisfies LedgerCommand);
    await answered;
    batchMs.push(performance.now() - sentMs);
    batches++;
  }
  const wallMs = performance.now() - wallBefore;
  const cpu = process.cpuUsage(cpuBefore);
  const serverCpuAfter = backendPid === undefined ? undefined : processCpuUs(backendPid);
  batchMs.sort((a, b) => a - b);
  actor.stop();

  // The ledger must still balance, or the figures measure a broken server [INV-3 conservation].
  const sum = ledger.sumOfBalancesMinor();
  if (store instanceof PostgresLedgerStore) store.connection.script(`DROP SCHEMA ${schema} CASCADE`);
  store.close?.();
  rmSync(dir, { recursive: true, force: true });
  if (sum !== 0) {
    process.stderr.write(`bench:server: the ledger does not balance (sum ${sum})\n`);
    process.exit(1);
  }
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const figures = {
    store: config.store, synchronous: config.store === 'postgres' ? `synchronous_commit ${config.synchronous === 'full' ? 'on' : 'off'}` : config.synchronous, commit: COMMIT, crypto: CRYPTO, requests: requests.length, batch: BATCH, batches,
    outcomes: Object.fromEntries(outcomes),
    requestsPerSecond: Math.round(requests.length / (wallMs / 1000)),
    cpuUsPerRequest: Math.round((cpuMs * 1000) / requests.length),
    userUsPerRequest: Math.round(cpu.user / requests.length),
    systemUsPerRequest: Math.round(cpu.system / requests.length),
    serverCpuUsPerRequest: serverCpuBefore === undefined || serverCpuAfter === undefined ? undefined : Math.round((serverCpuAfter - serverCpuBefore) / requests.length),
    wallMsPerBatch: Number((wallMs / batches).toFixed(3)),
    batchMsP50: Number(percentile(batchMs, 0.5).toFixed(3)),
    batchMsP99: Number(percentile(batchMs, 0.99).toFixed(3)),
    wallMs: Math.round(wallMs),
  };
  process.stdout.write(JSON.stringify(figures) + '\n');
  return figures;
}

if (POSTGRES_URL === undefined) {
  await main({ store: STORE, synchronous: SYNCHRONOUS });
} else {
  // Side by side, the same requests: the embedded default at both durabilities, then PostgreSQL at both.
  const configs: Config[] = [
    { store: 'sqlite', synchronous: 'full' }, { store: 'sqlite', synchronous: 'normal' },
    { store: 'postgres', synchronous: 'full' }, { store: 'postgres', synchronous: 'normal' },
  ];
  const rows: Array<Record<string, unknown>> = [];
  for (const config of configs) rows.push(await main(config));
  process.stdout.write('\n| ledger | requests/s | batch p50 ms | batch p99 ms | CPU µs/request (this process) | PostgreSQL server CPU µs/request |\n|---|---|---|---|---|---|\n');
  for (const r of rows) {
    process.stdout.write(`| ${r.store} ${r.synchronous} | ${r.requestsPerSecond} | ${r.batchMsP50} | ${r.batchMsP99} | ${r.cpuUsPerRequest} | ${r.serverCpuUsPerRequest ?? '–'} |\n`);
  }
}
