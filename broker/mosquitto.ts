// Goal: run the mqtt mode against an external broker, Mosquitto from Debian's packages, with the same
// credentials and the same topic ACL as the embedded broker; tests start their own Mosquitto with it.
// Method: write Mosquitto's password file in its PBKDF2-SHA512 `$7$` format (the format mosquitto_passwd
// writes, computed here so ten thousand users take a second, not ten thousand processes), an ACL file with one
// `user` block per identity generated from broker/topics.ts' `aclRules`, and a config: one listener, anonymous
// refused, the client id forced to the username (so no client can take over another's session), retained
// messages refused, queue limits left at Mosquitto's defaults so the harness must survive their silent drops —
// or, for `payfleet broker-config`, sized for the fleet with a comment on each (`limits`). Then (tests) spawn
// `mosquitto -c` and wait until it accepts TCP connections.

import { spawn, type ChildProcess } from 'node:child_process';
import { pbkdf2Sync, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { credentialsFor } from './credentials.ts';
import { aclRules, usernameOf, type ClientIdentity } from './topics.ts';

export const MOSQUITTO_BINARY = '/usr/sbin/mosquitto';
/** Mosquitto 2.0's defaults for `$7$` hashes. */
const PBKDF2_ITERATIONS = 101;
const SALT_BYTES = 12;

/** One line of a Mosquitto password file: `username:$7$iterations$salt$hash` (PBKDF2-HMAC-SHA512, 64 bytes). */
export function passwordFileLine(username: string, password: string, salt: Buffer = randomBytes(SALT_BYTES)): string {
  if (username.includes(':')) throw new Error(`badUsername: a Mosquitto username cannot contain ':', got ${JSON.stringify(username)}`);
  const hash = pbkdf2Sync(password, salt, PBKDF2_ITERATIONS, 64, 'sha512');
  return `${username}:$7$${PBKDF2_ITERATIONS}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

export function passwordFile(secret: string, identities: readonly ClientIdentity[]): string {
  return identities.map((identity) => {
    const { username, password } = credentialsFor(secret, identity);
    return passwordFileLine(username, password) + '\n';
  }).join('');
}

/** The ACL file: each identity's rules of the topic contract, and nothing else (Mosquitto denies by default). */
export function aclFile(identities: readonly ClientIdentity[]): string {
  return identities.map((identity) => {
    const rules = aclRules(identity).map((rule) => `topic ${rule.access} ${rule.filter}\n`);
    return `user ${usernameOf(identity)}\n${rules.join('')}\n`;
  }).join('');
}

export interface MosquittoConfigOptions {
  host: string;
  port: number;
  passwordFile: string;
  aclFile: string;
  logFile: string;
  /** Sized for a fleet (`payfleet broker-config`); Mosquitto's defaults when absent (the tests' brokers). */
  limits?: MosquittoLimits;
  /** Also log to standard output (a broker started by hand says it is running). */
  logToStdout?: boolean;
}

/** What a fleet needs of one Mosquitto (see `fleetLimitLines`). */
export interface MosquittoLimits {
  /** Every connection of the run: terminals, POS, servers, the harness. */
  endpoints: number;
  /** Of them, the payment-server connections, each of which receives its shards' whole request stream. */
  servers: number;
}

/** Descriptors the Mosquitto process needs besides one per connection (listeners, log file, epoll, password file). */
export const MOSQUITTO_FD_RESERVE = 64;

/** The file-descriptor limit a Mosquitto needs for `limits` (it cannot set its own: `ulimit -n` or LimitNOFILE). */
export function mosquittoFdLimit(limits: MosquittoLimits): number {
  return limits.endpoints + MOSQUITTO_FD_RESERVE;
}

/** The limit lines of a fleet's Mosquitto, each with the reason for its value. */
function fleetLimitLines(limits: MosquittoLimits): string[] {
  const queued = Math.max(1_000, 2 * limits.endpoints);
  return [
    `# The fleet: ${limits.endpoints} connections (${limits.servers} of them payment servers).`,
    `# File descriptors: one per connection plus ${MOSQUITTO_FD_RESERVE} for the process, so start Mosquitto with`,
    `# \`ulimit -n ${mosquittoFdLimit(limits)}\` or more (systemd: LimitNOFILE=${mosquittoFdLimit(limits)}); it cannot raise its own limit, and`,
    '# past it new connections are refused while the old ones live on.',
    '#',
    '# Every connection of the run at once, on this one broker: when the other brokers of a run are gone their',
    '# terminals fail over here. Past it Mosquitto refuses the connection (the run ends with the ENVIRONMENT verdict).',
    `max_connections ${limits.endpoints}`,
    '#',
    '# QoS 1 messages a client may have unacknowledged. A payment server receives the requests of every terminal',
    "# of its shards; Mosquitto's default of 20 would feed it 20 per round trip, so its window is opened to one per",
    '# connection (at most 65535, the MQTT limit) and its own event loop sets the pace.',
    `max_inflight_messages ${Math.min(65_535, Math.max(20, limits.endpoints))}`,
    '#',
    '# QoS 1 messages held per client beyond those in flight; Mosquitto drops the rest silently. A server must',
    '# be able to queue a request and a remittance from every connection at once (after a broker restart, every',
    "# terminal's backlog arrives together): two per connection, never below Mosquitto's default of 1000.",
    `max_queued_messages ${queued}`,
    '#',
    '# Payment requests are small and latency-bound: no Nagle delay (the embedded broker does the same).',
    'set_tcp_nodelay true',
  ];
}

export function mosquittoConfig(o: MosquittoConfigOptions): string {
  return [
    '# Written by payfleet (broker/mosquitto.ts).',
    'per_listener_settings false',
    'allow_anonymous false',
    `password_file ${o.passwordFile}`,
    `acl_file ${o.aclFile}`,
    // The contract has no retained messages: they would replay stale answers to reconnecting clients.
    'retain_available false',
    'persistence false',
    // Run as whoever starts it: as root Mosquitto would otherwise switch to a user that cannot read these files.
    ...(process.getuid?.() === 0 ? ['user root'] : []),
    `log_dest file ${o.logFile}`,
    ...(o.logToStdout ? ['log_dest stdout'] : []),
    'log_type error',
    'log_type warning',
    'log_type notice',
    `listener ${o.port} ${o.host}`,
    // A listener option, so after `listener`: a client cannot choose its client id, so it cannot take over
    // another identity's session.
    'use_username_as_clientid true',
    ...(o.limits ? ['', ...fleetLimitLines(o.limits)] : []),
    '',
  ].join('\n');
}

/** A free TCP port on `host`, as the OS hands it out. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export interface MosquittoOptions {
  /** Files go here (created if missing). */
  dir: string;
  /** Every client that may connect. */
  identities: readonly ClientIdentity[];
  secret: string;
  host?: string;
  /** A free one when undefined. */
  port?: number;
  binary?: string;
  /** How long to wait for the listener before giving up. */
  startTimeoutMs?: number;
}

export interface RunningMosquitto {
  url: string;
  host: string;
  port: number;
  configFile: string;
  logFile: string;
  pid(): number | undefined;
  /** SIGKILL, as a crash; resolves once the process is gone. */
  kill(): Promise<void>;
  /** Starts it again with the same files and port (after kill). */
  restart(): Promise<void>;
  /** SIGTERM, then SIGKILL if it lingers. */
  close(): Promise<void>;
}

export async function startMosquitto(options: MosquittoOptions): Promise<RunningMosquitto> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? (await freePort(host));
  const binary = options.binary ?? MOSQUITTO_BINARY;
  const startTimeoutMs = options.startTimeoutMs ?? 10_000;
  mkdirSync(options.dir, { recursive: true });
  const files = {
    host,
    port,
    passwordFile: join(options.dir, 'passwd'),
    aclFile: join(options.dir, 'acl'),
    logFile: join(options.dir, 'mosquitto.log'),
  };
  const configFile = join(options.dir, 'mosquitto.conf');
  writeFileSync(files.passwordFile, passwordFile(options.secret, options.identities), { mode: 0o600 });
  writeFileSync(files.aclFile, aclFile(options.identities), { mode: 0o600 });
  writeFileSync(configFile, mosquittoConfig(files));

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  async function spawnAndWait(): Promise<void> {
    let stderr = '';
    let exitCode: number | null | undefined;
    const proc = spawn(binary, ['-c', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    proc.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-2000);
    });
    exited = new Promise((resolve) => {
      proc.once('exit', (code) => {
        exitCode = code;
        resolve();
      });
      proc.once('error', (error) => {
        stderr += error.message;
        exitCode = -1;
        resolve();
      });
    });
    // Poll until the listener accepts a connection, or the process dies (bad config, port taken).
    for (let waitedMs = 0; waitedMs < startTimeoutMs; waitedMs += 25) {
      if (exitCode !== undefined) throw new Error(`mosquittoExited: ${binary} exited with ${exitCode}: ${stderr.trim()}`);
      if (await accepts(host, port)) return;
      await sleep(25);
    }
    proc.kill('SIGKILL');
    throw new Error(`mosquittoTimeout: no listener on ${host}:${port} after ${startTimeoutMs} ms: ${stderr.trim()}`);
  }

  async function stop(signal: NodeJS.Signals): Promise<void> {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill(signal);
    const lingering = setTimeout(() => proc.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(lingering);
  }

  await spawnAndWait();
  return {
    url: `mqtt://${host}:${port}`,
    host,
    port,
    configFile,
    logFile: files.logFile,
    pid: () => child?.pid,
    kill: () => stop('SIGKILL'),
    async restart() {
      await stop('SIGKILL');
      await spawnAndWait();
    },
    close: () => stop('SIGTERM'),
  };
}
