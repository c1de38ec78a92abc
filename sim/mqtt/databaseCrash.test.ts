// Goal: the bar of issue 17 on a real PostgreSQL, as a user types it — the quickstart in mqtt mode at ×60 with
// every server's ledger on PostgreSQL, the database crashed (`pg_ctl stop -m immediate`) 10 s into the run and
// started again: exit 0, nothing lost, nothing paid twice, and the postings there when read with psql.
// Method: one throwaway cluster (postgresTestCluster.ts: initdb in a temporary directory, a free port, as the
// postgres user under root; it fails naming the Debian package when PostgreSQL is absent). The scenario is
// scenarios/quickstart.yaml with one databaseCrash fault at 10m (10 real seconds at ×60), run through
// `payfleet run` (sim/cli/main.ts) with --ledger and --ledger-pgdata. That the crash was real is read in the log
// of the restarted server (recovery from the WAL); the postings are read back with psql after the run.

import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../cli/main.ts';
import type { RunSummary } from '../run/summary.ts';
import { startPostgresTestCluster, type PostgresTestCluster } from '../sd/postgresTestCluster.ts';

const dir = mkdtempSync(join(tmpdir(), 'payfleet-dbcrash-'));
let cluster: PostgresTestCluster | undefined;
afterAll(() => {
  cluster?.remove();
  rmSync(dir, { recursive: true, force: true });
});

/** `payfleet run …` in this process; its exit status and everything it printed. */
async function payfleet(argv: string[]): Promise<{ status: number; output: string }> {
  const lines: string[] = [];
  // A signal of our own: the run installs no SIGINT/SIGTERM handlers in the test process.
  const status = await main(argv, { out: (l) => lines.push(l), err: (l) => lines.push(l), env: {}, signal: new AbortController().signal });
  return { status, output: lines.join('\n') };
}

/** psql as a user would run it: unaligned, tuples only. */
function psql(pg: PostgresTestCluster, sql: string): string[][] {
  const text = execFileSync('psql', ['-h', '127.0.0.1', '-p', String(pg.port), '-U', 'payfleet', '-d', 'payfleet', '-At', '-F', '|', '-c', sql], { encoding: 'utf8' });
  return text.trim().split('\n').filter((line) => line !== '').map((line) => line.split('|'));
}

describe('payfleet run --mode mqtt on PostgreSQL with a databaseCrash', () => {
  it('quickstart at ×60, PostgreSQL crashed and restarted 10 s into the run: exit 0, lost 0, duplicated 0, the postings in the database', async () => {
    const pg = (cluster = await startPostgresTestCluster());
    const scenarioFile = join(dir, 'quickstart-dbcrash.yaml');
    const quickstart = readFileSync(new URL('../../scenarios/quickstart.yaml', import.meta.url), 'utf8');
    expect(quickstart).not.toMatch(/^faults:/m);
    writeFileSync(scenarioFile, `${quickstart}\nfaults:\n  - { at: 10m, kind: databaseCrash, restartAfter: 1m }\n`);
    const out = join(dir, 'run');
    const base = ['run', scenarioFile, '--mode', 'mqtt', '--time-scale', '60', '--quiet', '--out', out];

    // A data directory that is not the server of --ledger is bad input: nothing runs, nothing is written.
    const otherPort = pg.url.replace(`:${pg.port}/`, `:${pg.port + 1}/`);
    const refused = await payfleet([...base, '--ledger', otherPort, '--ledger-pgdata', pg.dataDir]);
    expect(refused.output).toMatch(/--ledger-pgdata .*: its server listens on port \d+, but --ledger names port \d+/);
    expect(refused.status).toBe(2);
    expect(existsSync(out)).toBe(false);

    const { status, output } = await payfleet([...base, '--ledger', pg.url, '--ledger-pgdata', pg.dataDir]);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as RunSummary;
    const context = `${output}\n${pg.log().slice(-3000)}`;
    expect(summary.faults.databaseCrashes, context).toBe(1);
    expect(summary.ledger.lost, context).toBe(0);
    expect(summary.ledger.duplicated, context).toBe(0);
    expect(summary.ledger.sumOfBalancesMinor, context).toBe(0);
    expect(summary.remittance.pendingAtEnd, context).toBe(0);
    expect(status, context).toBe(0);
    // The crash was one: the restarted server recovered from its WAL, and wrote so in the run's log.
    const restartLog = readFileSync(join(out, 'logs', 'postgres.log'), 'utf8');
    expect(restartLog, restartLog).toMatch(/database system was not properly shut down; automatic recovery in progress/);
    // While it was down the servers waited for it (their round trips retried until it was back) instead of
    // answering before a commit; each says how often when it stops.
    const serverLogs = ['server-0.log', 'server-1.log'].map((name) => readFileSync(join(out, 'logs', name), 'utf8'));
    const waited = serverLogs.map((log) => Number(/postgres \{"commits":\d+,"waitedForDatabase":(\d+)\}/.exec(log)?.[1] ?? NaN));
    expect(waited.every((n) => Number.isInteger(n)), serverLogs.join('\n')).toBe(true);
    expect(waited[0]! + waited[1]!, serverLogs.join('\n')).toBeGreaterThan(0);

    // The postings, read with psql: a schema per server, each with postings, no transaction on two servers, and
    // the double entry balanced in each.
    const schemas = psql(pg, "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'payfleet_run_%' ORDER BY 1").map((r) => r[0]!);
    expect(schemas).toHaveLength(2);
    const union = schemas.map((s) => `SELECT tx_id FROM ${s}.postings`).join(' UNION ALL ');
    const [[total, distinct]] = psql(pg, `SELECT count(*), count(DISTINCT tx_id) FROM (${union}) AS p`) as [[string, string]];
    expect(Number(total)).toBeGreaterThan(0);
    expect(distinct).toBe(total);
    for (const schema of schemas) {
      const [[postings, balance]] = psql(pg, `SELECT (SELECT count(*) FROM ${schema}.postings), (SELECT sum(balance_minor) FROM ${schema}.accounts)`) as [[string, string]];
      expect(Number(postings), schema).toBeGreaterThan(0);
      expect(Number(balance), schema).toBe(0);
    }
  }, 240_000);
});
