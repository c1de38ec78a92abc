// Goal: the control a run gets over its PostgreSQL (`--ledger-pgdata`): it refuses a directory that is not the
// running server of the ledger URL, and it really crashes the server and starts it again on the same port.
// Method: one throwaway cluster (postgresTestCluster.ts); "up" is a query answered through psql, "crashed" is the
// restarted server recovering from its WAL (its log says so). The asynchronous restart is run by
// sim/mqtt/databaseCrash.test.ts inside a run; here the blocking one, which a run stopped by a signal uses.

import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PostgresControlError, postgresControlOf } from './postgresControl.ts';
import { startPostgresTestCluster, type PostgresTestCluster } from './postgresTestCluster.ts';

const dir = mkdtempSync(join(tmpdir(), 'payfleet-pgcontrol-'));
let cluster: PostgresTestCluster | undefined;
afterAll(() => {
  cluster?.remove();
  rmSync(dir, { recursive: true, force: true });
});

const isUp = (pg: PostgresTestCluster): boolean =>
  spawnSync('psql', ['-h', '127.0.0.1', '-p', String(pg.port), '-U', 'payfleet', '-d', 'payfleet', '-At', '-c', 'SELECT 1'], { encoding: 'utf8' }).stdout.trim() === '1';

/** The message of the PostgresControlError `make` throws. */
function refusal(make: () => unknown): string {
  try {
    make();
  } catch (error) {
    expect(error).toBeInstanceOf(PostgresControlError);
    return (error as Error).message;
  }
  throw new Error('expected a PostgresControlError');
}

describe('postgresControlOf: the power of a run over its PostgreSQL', () => {
  it('refuses what is not the running server of the ledger URL, then crashes it for real and starts it again', async () => {
    const pg = (cluster = await startPostgresTestCluster());
    const logFile = join(dir, 'postgres.log');
    expect(refusal(() => postgresControlOf(join(dir, 'none'), pg.url, logFile))).toBe('no such directory');
    expect(refusal(() => postgresControlOf(dir, pg.url, logFile))).toMatch(/not a PostgreSQL data directory \(no PG_VERSION in it\)/);
    const otherPort = pg.url.replace(`:${pg.port}/`, `:${pg.port + 1}/`);
    expect(refusal(() => postgresControlOf(pg.dataDir, otherPort, logFile))).toBe(`its server listens on port ${pg.port}, but --ledger names port ${pg.port + 1}: not the database of the ledgers`);
    pg.stop('fast');
    expect(refusal(() => postgresControlOf(pg.dataDir, pg.url, logFile))).toMatch(/no PostgreSQL is running on it \(no postmaster\.pid\): start it first/);
    pg.start();

    const control = postgresControlOf(pg.dataDir, pg.url, logFile);
    expect(control.description).toBe(`PostgreSQL on port ${pg.port} (data directory ${pg.dataDir})`);
    expect(isUp(pg)).toBe(true);
    await control.crash();
    expect(control.down).toBe(true);
    expect(isUp(pg)).toBe(false);
    control.restartSync();
    expect(control.down).toBe(false);
    expect(isUp(pg)).toBe(true);
    // A crash, not a clean stop: the server started again found no shutdown checkpoint and replayed its WAL.
    expect(readFileSync(logFile, 'utf8')).toMatch(/database system was not properly shut down; automatic recovery in progress/);
  }, 120_000);
});
