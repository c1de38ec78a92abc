// Goal: a real, throwaway PostgreSQL server for tests and benchmarks of the Postgres ledger store, that can be
// crashed (`pg_ctl stop -m immediate`) and started again on the same data, and that leaves nothing behind.
// Method: Debian's own binaries (/usr/lib/postgresql/N/bin, the highest N; else `initdb` on PATH). `initdb` in a
// fresh temporary directory, the server on a free TCP port of 127.0.0.1 with its Unix socket in that directory
// (never /var/run/postgresql, which the packaged service owns), trust authentication for one user `payfleet`.
// PostgreSQL refuses to run as root, so when the tests run as root every command runs as the `postgres` user
// (`runuser -u postgres --`) and the directory is handed to that user first. Without PostgreSQL installed this
// throws an error naming the Debian package: a test that needs the database fails, it never skips silently.

import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../broker/mosquitto.ts';

export class PostgresNotInstalledError extends Error {
  readonly code = 'postgresNotInstalled';
  constructor(readonly value: string) {
    super(`PostgreSQL is not installed (looked for initdb in /usr/lib/postgresql/*/bin and on PATH): install the Debian package postgresql (apt-get install -y postgresql)`);
    this.name = 'PostgresNotInstalledError';
  }
}

/** The directory holding initdb, pg_ctl and postgres; throws PostgresNotInstalledError when there is none. */
export function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
    for (const version of versions) {
      const dir = join(root, version, 'bin');
      if (existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'))) return dir;
    }
  }
  try {
    const initdb = execFileSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' }).trim();
    if (initdb) return initdb.slice(0, initdb.lastIndexOf('/'));
  } catch {
    // Falls through to the error naming the package.
  }
  throw new PostgresNotInstalledError(root);
}

export interface PostgresTestCluster {
  /** `postgres://payfleet@127.0.0.1:PORT/payfleet`. */
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** The data directory (`pg_ctl -D`), inside `dir`. */
  readonly dataDir: string;
  /** Stops the server: 'fast' (clean) or 'immediate' (a crash: no checkpoint, recovery from the WAL on start). */
  stop(mode?: 'fast' | 'immediate'): void;
  /** Starts it again on the same data directory and port; returns once it accepts connections. */
  start(): void;
  /** Stops it (immediately) and removes the directory. */
  remove(): void;
  /** The server's log so far (for a failing test's message). */
  log(): string;
}

const USER = 'payfleet';
const DATABASE = 'payfleet';

/** Creates, starts and returns a throwaway cluster; `remove()` it after. */
export async function startPostgresTestCluster(): Promise<PostgresTestCluster> {
  const bin = postgresBinDir();
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'payfleet-pg-'));
  const dataDir = join(dir, 'data');
  const logFile = join(dir, 'server.log');
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
  }
  // As root, every PostgreSQL command runs as the postgres user, which owns the directory.
  const run = (program: string, args: string[]) => {
    const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, program), ...args]] : [join(bin, program), args];
    return execFileSync(file, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  };
  const port = await freePort();
  try {
    // --no-sync only for initdb's own files; the server itself runs with fsync on, so a crash test is a real one.
    run('initdb', ['-D', dataDir, '-U', USER, '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
    const options = [
      `-p ${port}`, `-k ${dir}`, "-c listen_addresses='127.0.0.1'", '-c max_connections=60', '-c shared_buffers=32MB',
      '-c fsync=on', '-c synchronous_commit=on',
    ].join(' ');
    const start = () => run('pg_ctl', ['-D', dataDir, '-l', logFile, '-o', options, '-w', '-t', '60', 'start']);
    start();
    run('createdb', ['-h', dir, '-p', String(port), '-U', USER, DATABASE]);
    let running = true;
    const cluster: PostgresTestCluster = {
      url: `postgres://${USER}@127.0.0.1:${port}/${DATABASE}`,
      port,
      dir,
      dataDir,
      stop(mode = 'fast') {
        if (!running) return;
        run('pg_ctl', ['-D', dataDir, '-m', mode, '-w', 'stop']);
        running = false;
      },
      start() {
        if (running) return;
        start();
        running = true;
      },
      remove() {
        try {
          cluster.stop('immediate');
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
      log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    };
    return cluster;
  } catch (error) {
    const log = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
    try {
      run('pg_ctl', ['-D', dataDir, '-m', 'immediate', '-w', 'stop']);
    } catch {
      // Not started: nothing to stop.
    }
    rmSync(dir, { recursive: true, force: true });
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`could not start a throwaway PostgreSQL cluster in ${dir}: ${(error as Error).message}\n${stderr}\n${log}`);
  }
}
