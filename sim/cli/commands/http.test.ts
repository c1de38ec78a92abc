import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { main } from '../main.ts';
import { startPostgresTestCluster, type PostgresTestCluster } from '../../sd/postgresTestCluster.ts';

const BIN = join(import.meta.dirname, '../../../bin/payfleet.mjs');
const SCENARIO = join(import.meta.dirname, '../../../load/k6/shared-means.yaml');

/** `payfleet http SCENARIO --port 0 …` in a child process, once it prints its URL; `stop()` sends SIGTERM. */
async function serve(extra: string[] = []): Promise<{ url: string; out: () => string; stop: () => Promise<number | null> }> {
  const child = spawn(process.execPath, [BIN, 'http', SCENARIO, '--port', '0', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(out);
      if (match) resolve(match[1]!);
    });
    child.on('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
  });
  return {
    url,
    out: () => out,
    stop: () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

describe('payfleet http', () => {
  it('serves the scenario means on the address it prints, and stops on SIGTERM', async () => {
    const http = await serve();
    const health = await (await fetch(`${http.url}/v1/health`)).json();
    expect(health).toEqual({ status: 'ok', shards: 2, store: 'memory', scheme: 'ed25519' });
    const means = await (await fetch(`${http.url}/v1/means/m199`)).json();
    expect(means).toMatchObject({ meansId: 'm199', availableMinor: 500_000 });
    expect(await http.stop()).toBe(0);
    expect(http.out()).toContain('payfleet http: stopped');
  });

  it('refuses a --ledger it cannot use, naming the flag: exit status 2, nothing served', async () => {
    for (const [argv, message] of [
      [['--ledger', '/tmp/one.sqlite'], /--ledger: expected memory, sqlite:DIR \(a file per shard in DIR\) or postgres:\/\/user@host:port\/db\[\?schema=PREFIX\], got '\/tmp\/one.sqlite'/],
      [['--ledger', 'mysql://h/db'], /--ledger: unknown ledger engine/],
      [['--ledger', 'memory', '--db-dir', '/tmp/x'], /--db-dir and --ledger: give one of them, not both/],
    ] as const) {
      const lines: string[] = [];
      const status = await main(['http', SCENARIO, '--port', '0', ...argv], { out: (l) => lines.push(l), err: (l) => lines.push(l), env: {} });
      expect(lines.join('\n'), argv.join(' ')).toMatch(message);
      expect(lines.join('\n')).not.toMatch(/listening on/);
      expect(status, argv.join(' ')).toBe(2);
    }
  });
});

describe('payfleet http --ledger postgres://…', () => {
  let cluster: PostgresTestCluster | undefined;
  afterAll(() => cluster?.remove());

  it('keeps a schema per shard on PostgreSQL: a debit survives a restart, its Idempotency-Key is answered from the stored answer, psql shows the transfer and the stored answer', async () => {
    const pg = (cluster = await startPostgresTestCluster());
    const debit = (url: string) =>
      fetch(`${url}/v1/means/m0/debits`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': 'order-1' },
        body: JSON.stringify({ issuer: 'webshop', payee: 'merchant:web', amountMinor: 1250 }),
      });

    const first = await serve(['--ledger', pg.url]);
    expect(first.out()).toMatch(/postgres ledgers \(schemas payfleet_http_0…payfleet_http_1 on postgres:\/\/payfleet@127\.0\.0\.1:\d+\/payfleet\)/);
    expect(await (await fetch(`${first.url}/v1/health`)).json()).toMatchObject({ store: 'postgres', shards: 2 });
    const paid = await debit(first.url);
    const receipt = (await paid.json()) as { txId: string; availableMinor: number };
    expect(paid.status).toBe(201);
    expect(receipt.availableMinor).toBe(500_000 - 1250);
    expect(await first.stop()).toBe(0);

    // A new process on the same schemas: the means is opened again as a no-op, the debit is still there, and the
    // same key gets the stored answer instead of a second debit.
    const second = await serve(['--ledger', pg.url]);
    expect(await (await fetch(`${second.url}/v1/means/m0`)).json()).toMatchObject({ availableMinor: 500_000 - 1250 });
    const again = await debit(second.url);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(((await again.json()) as { txId: string }).txId).toBe(receipt.txId);
    expect(await (await fetch(`${second.url}/v1/means/m0`)).json()).toMatchObject({ availableMinor: 500_000 - 1250 });
    expect(await second.stop()).toBe(0);

    const psql = (sql: string) => execFileSync('psql', ['-h', '127.0.0.1', '-p', String(pg.port), '-U', 'payfleet', '-d', 'payfleet', '-At', '-c', sql], { encoding: 'utf8' }).trim();
    expect(psql("SELECT string_agg(schema_name, ',' ORDER BY schema_name) FROM information_schema.schemata WHERE schema_name LIKE 'payfleet_http_%'")).toBe('payfleet_http_0,payfleet_http_1');
    // A debit from another point of issue is a transfer (spent elsewhere, never a proxy's posting), and its answer
    // is stored under (http:issuer, key), in the same commit.
    const both = (sql: string) => `${sql.replaceAll('SCHEMA', 'payfleet_http_0')} UNION ALL ${sql.replaceAll('SCHEMA', 'payfleet_http_1')}`;
    expect(psql(both("SELECT sender || ' ' || req_id FROM SCHEMA.results"))).toBe('http:webshop order-1');
    expect(psql(both('SELECT amount_minor FROM SCHEMA.transfers WHERE amount_minor = 1250'))).toBe('1250');
    expect(psql(both('SELECT sum(balance_minor) FROM SCHEMA.accounts'))).toBe('0\n0');
  }, 120_000);
});
