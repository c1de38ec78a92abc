// Goal: a run's power over the PostgreSQL that holds its servers' ledgers — crash it for real (`pg_ctl stop -m
// immediate`: no checkpoint, the next start recovers from the WAL) and start it again — so a scenario's
// `databaseCrash` fault is the crash an operator would see, not a stand-in.
// Method: the run is told the server's data directory (`--ledger-pgdata DIR`), the handle every PostgreSQL tool
// uses (`pg_ctl -D`, `PGDATA`); that is what a user of a local PostgreSQL already knows, works for a packaged
// cluster and a throwaway one alike, and a URL alone could never give (the database may be on another machine, and
// a client cannot stop a server). Before anything runs the directory is checked: a data directory (PG_VERSION), a
// server running on it (postmaster.pid), and the very server the --ledger URL names (the pid file's port), so a
// mistyped directory is bad input, not a crash of some other database. The restart is `pg_ctl restart`, which
// starts the server with the options of its last start (postmaster.opts), on the same port. pg_ctl runs as the
// directory's owner (PostgreSQL refuses to run as root), with the server's output appended to a log file of the
// run, opened by this process, so the owner needs no right to write into the run directory.

import { execFile, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { postgresBinDir } from './postgresTestCluster.ts';

/** The data directory given cannot be controlled: bad input, nothing has run. */
export class PostgresControlError extends Error {
  readonly code = 'badPgdata';
  constructor(message: string, readonly value: string) {
    super(message);
    this.name = 'PostgresControlError';
  }
}

/** Crash and restart of the database holding a run's ledgers. */
export interface DatabaseControl {
  /** For logs: `PostgreSQL on port 5432 (data directory /var/lib/…)`. */
  readonly description: string;
  /** True from a crash until a restart began: the run owes the user their database. */
  readonly down: boolean;
  /** `pg_ctl stop -m immediate`: the server dies without a checkpoint; resolves once it is gone. */
  crash(): Promise<void>;
  /** `pg_ctl restart`: started again with its last options; resolves once it accepts connections. */
  restart(): Promise<void>;
  /** The same, blocking: for a run stopped by a signal, which exits as soon as its handler returns. */
  restartSync(): void;
}

/** The port a postgres:// URL names (5432 when it names none). */
function portOfUrl(url: string): number {
  const port = new URL(url).port;
  return port === '' ? 5432 : Number(port);
}

/**
 * The control of the PostgreSQL whose data directory is `dataDir` and which serves `ledgerUrl`; the restarted
 * server writes its log to `logFile`. Throws PostgresControlError naming what is wrong.
 */
export function postgresControlOf(dataDir: string, ledgerUrl: string, logFile: string): DatabaseControl {
  if (!existsSync(dataDir) || !statSync(dataDir).isDirectory()) throw new PostgresControlError(`no such directory`, dataDir);
  const versionFile = join(dataDir, 'PG_VERSION');
  if (!existsSync(versionFile)) throw new PostgresControlError(`not a PostgreSQL data directory (no PG_VERSION in it)`, dataDir);
  const pidFile = join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) throw new PostgresControlError(`no PostgreSQL is running on it (no postmaster.pid): start it first`, dataDir);
  // postmaster.pid: pid, data directory, start time, port, socket directory, … (one a line).
  const pidPort = Number(readFileSync(pidFile, 'utf8').split('\n')[3]);
  const urlPort = portOfUrl(ledgerUrl);
  if (pidPort !== urlPort) {
    throw new PostgresControlError(`its server listens on port ${pidPort}, but --ledger names port ${urlPort}: not the database of the ledgers`, dataDir);
  }
  const owner = statSync(dataDir);
  const myUid = process.getuid?.() ?? owner.uid;
  if (myUid !== 0 && myUid !== owner.uid) {
    throw new PostgresControlError(`it belongs to uid ${owner.uid}, and pg_ctl must run as its owner: run as that user or as root`, dataDir);
  }
  // The binaries of the directory's own major version when Debian's layout has them, else the newest installed.
  const version = readFileSync(versionFile, 'utf8').trim();
  const ownBin = join('/usr/lib/postgresql', version, 'bin');
  const pgCtl = join(existsSync(join(ownBin, 'pg_ctl')) ? ownBin : postgresBinDir(), 'pg_ctl');
  const asOwner = myUid === 0 && owner.uid !== 0 ? { uid: owner.uid, gid: owner.gid } : {};

  const restartArgs = ['-D', dataDir, '-w', '-t', '60', 'restart'];
  const failed = (code: number | null) => new Error(`pg_ctl restart on ${dataDir} exited with ${code} (see ${logFile})`);
  let down = false;
  return {
    description: `PostgreSQL on port ${pidPort} (data directory ${dataDir})`,
    get down() {
      return down;
    },
    crash: () =>
      new Promise((resolve, reject) => {
        execFile(pgCtl, ['-D', dataDir, '-m', 'immediate', '-w', '-t', '60', 'stop'], { ...asOwner, cwd: dataDir, encoding: 'utf8' }, (error, _stdout, stderr) => {
          if (error) return reject(new Error(`pg_ctl stop -m immediate on ${dataDir} failed: ${stderr.trim() || error.message}`));
          down = true;
          resolve();
        });
      }),
    // The postmaster inherits stdout and stderr: a file, not a pipe, or waiting for pg_ctl would wait for the server.
    restart: () =>
      new Promise((resolve, reject) => {
        down = false;
        const fd = openSync(logFile, 'a');
        const child = spawn(pgCtl, restartArgs, { ...asOwner, cwd: dataDir, stdio: ['ignore', fd, fd] });
        closeSync(fd);
        child.once('error', reject);
        child.once('exit', (code) => (code === 0 ? resolve() : reject(failed(code))));
      }),
    restartSync: () => {
      down = false;
      const fd = openSync(logFile, 'a');
      try {
        const result = spawnSync(pgCtl, restartArgs, { ...asOwner, cwd: dataDir, stdio: ['ignore', fd, fd] });
        if (result.status !== 0) throw failed(result.status);
      } finally {
        closeSync(fd);
      }
    },
  };
}
