// Goal: `payfleet agent`, the host daemon of a run spread over machines: it connects to the coordinator over
// WebSocket with the run's token, says what it can hold, and runs as its own children whatever the coordinator
// places on it — swarm workers and payment servers — applies the faults it is ordered to (SIGKILL and restart,
// SIGSTOP/SIGCONT), reads its servers' SQLite ledgers (figures each minute, the whole file after the drain) and
// ships its children's output, all over that one channel: no shared filesystem is assumed. Losing the coordinator
// stops every child.
// Method: the same parts as a local run — a worker is an `IpcWorkerTransport` (transport.ts) whose messages are
// relayed as they are, a server a `ManagedProcess` (processes.ts) on a ledger in the agent's work directory. The
// registry a server reads is written here from the scenario. Peak RSS is each child's VmHWM (Linux /proc), read
// every second, plus the agent's own.

import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { freemem, hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { WebSocket } from 'ws';
import { registryOf } from '../core/fleetKeys.ts';
import { writeRegistry } from '../sd/registry.ts';
import { openLedgerStore, type DurableLedgerStore } from '../sd/ledgerSpec.ts';
import { agentTokenFor, parseWireMessage, type AgentRequest, type AgentStats, type FromAgent, type ServerStart, type ToAgent } from './agentProtocol.ts';
import { ManagedProcess } from './processes.ts';
import { IpcWorkerTransport } from './transport.ts';

/** Resident memory a connected terminal costs in a swarm worker (README, "RSS per connected terminal": 58.0 KB). */
export const RSS_PER_TERMINAL_BYTES = 58 * 1024;
/** File descriptors kept for the agent, its servers and their files, out of the limit. */
const FD_RESERVE = 256;
/** Share of the free memory the terminals may take (the rest: servers, the broker's clients, the system). */
const MEMORY_SHARE = 0.75;
const LEDGER_CHUNK_BYTES = 4 * 1024 * 1024;
/** Without a ping from the coordinator for this long, it is taken as lost. */
const COORDINATOR_SILENCE_REAL_MS = 20_000;

export interface AgentOptions {
  coordinatorUrl: string;
  secret: string;
  name: string;
  capacity: number;
  /** Where servers' ledgers, the registry and local logs go; a temporary directory (removed at the end) when absent. */
  workDir?: string;
  /** How long to keep trying to reach the coordinator (it may start after the agents). */
  connectWaitMs: number;
  log(line: string): void;
  /** Stops the agent (SIGINT/SIGTERM): every child is stopped first. */
  signal?: AbortSignal;
}

export type AgentOutcome =
  /** The coordinator ended the run (bye). */
  | { kind: 'done'; detail: string }
  /** The coordinator went away mid-run; every child was stopped. */
  | { kind: 'lost'; detail: string }
  /** The coordinator refused the agent (token, or the run already has its agents). */
  | { kind: 'refused'; detail: string }
  /** The coordinator could not be reached within the wait. */
  | { kind: 'unreachable'; detail: string }
  /** Stopped by a signal. */
  | { kind: 'stopped'; detail: string };

/** The terminals this host can hold by default: its fd limit and its free memory, whichever is smaller. */
export function defaultCapacity(): { capacity: number; fdLimit: number | undefined; freeMemoryBytes: number } {
  const fdLimit = openFileLimit();
  const freeMemoryBytes = freemem();
  const byMemory = Math.floor((freeMemoryBytes * MEMORY_SHARE) / RSS_PER_TERMINAL_BYTES);
  const byFds = fdLimit === undefined ? byMemory : Math.max(0, fdLimit - FD_RESERVE);
  return { capacity: Math.max(1, Math.min(byMemory, byFds)), fdLimit, freeMemoryBytes };
}

/** The soft limit of open files (Linux /proc); undefined elsewhere. */
function openFileLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    return soft === undefined || soft === 'unlimited' ? undefined : Number(soft);
  } catch {
    return undefined;
  }
}

/** A child's peak resident set (VmHWM), in bytes; undefined when it cannot be read (gone, or not Linux). */
function peakRssOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

interface HostedServer {
  process: ManagedProcess;
  /** Its SQLite ledger here; undefined when it is in a database. */
  ledgerPath: string | undefined;
  reader?: DurableLedgerStore;
}

/** Runs the agent until the coordinator ends the run, goes away, refuses it, or cannot be reached. */
export async function runAgent(options: AgentOptions): Promise<AgentOutcome> {
  const deadline = Date.now() + options.connectWaitMs;
  for (let attempt = 1; ; attempt++) {
    const outcome = await new AgentSession(options).run();
    if (outcome.kind !== 'unreachable' || Date.now() >= deadline || options.signal?.aborted) return outcome;
    if (attempt === 1) options.log(`payfleet agent: ${outcome.detail}; retrying until it answers (at most ${Math.round(options.connectWaitMs / 1000)} s)`);
    await new Promise((r) => setTimeout(r, 1_000));
  }
}

class AgentSession {
  private socket: WebSocket | undefined;
  private readonly workers = new Map<number, IpcWorkerTransport>();
  private readonly servers = new Map<string, HostedServer>();
  private readonly peaks = new Map<string, number>();
  private readonly workDir: string;
  private readonly ownWorkDir: boolean;
  private registryPath: string | undefined;
  private sampler: NodeJS.Timeout | undefined;

  constructor(private readonly options: AgentOptions) {
    this.ownWorkDir = options.workDir === undefined;
    this.workDir = options.workDir ?? mkdtempSync(join(tmpdir(), 'payfleet-agent-'));
    mkdirSync(join(this.workDir, 'logs'), { recursive: true });
  }

  run(): Promise<AgentOutcome> {
    return new Promise((resolve) => {
      const { coordinatorUrl, secret, name, capacity } = this.options;
      const socket = new WebSocket(coordinatorUrl, { headers: { authorization: `Bearer ${agentTokenFor(secret)}` }, maxPayload: 256 * 1024 * 1024 });
      this.socket = socket;
      let outcome: AgentOutcome | undefined;
      let opened = false;
      let lastPing = Date.now();
      const onAbort = (): void => {
        outcome = { kind: 'stopped', detail: `stopped by ${String(this.options.signal?.reason ?? 'a signal')}; every child stopped` };
        socket.terminate();
      };
      this.options.signal?.addEventListener('abort', onAbort, { once: true });
      const watchdog = setInterval(() => {
        if (opened && Date.now() - lastPing > COORDINATOR_SILENCE_REAL_MS) socket.terminate();
      }, 1_000);
      socket.on('unexpected-response', (_request, response) => {
        outcome = { kind: 'refused', detail: `the coordinator at ${coordinatorUrl} refused this agent: HTTP ${response.statusCode} ${response.statusMessage ?? ''}`.trim() };
        socket.terminate();
      });
      socket.on('error', (error) => {
        if (!opened) outcome ??= { kind: 'unreachable', detail: `cannot reach the coordinator at ${coordinatorUrl}: ${error.message}` };
      });
      socket.on('open', () => {
        opened = true;
        lastPing = Date.now();
        this.send({ type: 'hello', name, host: hostname(), pid: process.pid, capacity });
        this.options.log(`payfleet agent: ${name} connected to ${coordinatorUrl} (capacity ${capacity} terminals)`);
        this.sampler = setInterval(() => this.samplePeaks(), 1_000);
      });
      socket.on('ping', () => (lastPing = Date.now()));
      socket.on('message', (data) => {
        const message = parseWireMessage<ToAgent>(data);
        if (message?.type === 'bye') outcome = { kind: 'done', detail: 'the coordinator ended the run' };
        if (message) void this.receive(message);
      });
      socket.on('close', (code, reason) => {
        // The coordinator's own refusals after the handshake (4000-4999) say why in the reason.
        if (code >= 4000 && code < 5000) outcome ??= { kind: 'refused', detail: `the coordinator at ${coordinatorUrl} refused this agent: ${reason.toString()}` };
        clearInterval(watchdog);
        clearInterval(this.sampler);
        this.options.signal?.removeEventListener('abort', onAbort);
        void this.stopChildren().then(() => {
          if (this.ownWorkDir) rmSync(this.workDir, { recursive: true, force: true });
          resolve(outcome ?? { kind: opened ? 'lost' : 'unreachable', detail: `connection to the coordinator closed (${code}${reason.length ? ` ${reason.toString()}` : ''}); every child stopped` });
        });
      });
    });
  }

  private send(message: FromAgent): void {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  private ship(name: string, chunk: Buffer): void {
    this.send({ type: 'log', name, text: chunk.toString() });
  }

  private async receive(message: ToAgent): Promise<void> {
    switch (message.type) {
      case 'startWorker': {
        const index = message.worker;
        let worker: IpcWorkerTransport;
        try {
          worker = new IpcWorkerTransport(index, join(this.workDir, 'logs'), (chunk) => this.ship(`worker-${index}`, chunk));
        } catch (error) {
          // The coordinator fails the run on this exit; the reason goes to the worker's log there.
          this.ship(`worker-${index}`, Buffer.from(`agent ${this.options.name}: cannot start worker ${index}: ${(error as Error).message}\n`));
          this.send({ type: 'workerExited', worker: index, code: 70, signal: null });
          return;
        }
        this.workers.set(index, worker);
        this.send({ type: 'workerStarted', worker: index, pid: worker.pid ?? 0 });
        worker.onMessage((fromWorker) => this.send({ type: 'fromWorker', worker: index, message: fromWorker }));
        worker.onExit((code, signal) => this.send({ type: 'workerExited', worker: index, code, signal }));
        return;
      }
      case 'toWorker':
        return this.workers.get(message.worker)?.send(message.message);
      case 'killWorker':
        return this.workers.get(message.worker)?.kill();
      case 'request': {
        const { id, type: _type, ...request } = message;
        try {
          const value = await this.handle(request as AgentRequest);
          this.send({ type: 'reply', id, ok: true, value });
        } catch (error) {
          this.send({ type: 'reply', id, ok: false, error: (error as Error).message });
        }
        return;
      }
      case 'bye':
        this.socket?.close(1000, 'bye');
        return;
    }
  }

  private server(range: string): HostedServer {
    const server = this.servers.get(range);
    if (!server) throw new Error(`no server ${range} on this agent`);
    return server;
  }

  private async handle(request: AgentRequest): Promise<unknown> {
    switch (request.op) {
      case 'startServer': {
        const hosted = this.servers.get(request.server.range) ?? this.hostServer(request.server);
        await hosted.process.start();
        return { pid: hosted.process.pid };
      }
      case 'killServer':
        return this.server(request.range).process.kill();
      case 'pauseServer':
        return this.server(request.range).process.pause();
      case 'resumeServer':
        return this.server(request.range).process.resume();
      case 'stopServer': {
        const hosted = this.server(request.range);
        hosted.reader?.close();
        hosted.reader = undefined;
        return hosted.process.stop();
      }
      case 'ledgerFigures': {
        const hosted = this.server(request.range);
        if (!hosted.ledgerPath) throw new Error(`server ${request.range} keeps its ledger in a database`);
        hosted.reader ??= openLedgerStore({ engine: 'sqlite', path: hosted.ledgerPath }, { readonly: true });
        return { sumOfBalancesMinor: hosted.reader.sumOfBalancesMinor(), answeredRequests: hosted.reader.answeredRequests() };
      }
      case 'fetchLedger':
        return this.sendLedger(request.range);
      case 'stats':
        return this.stats();
    }
  }

  private hostServer(start: ServerStart): HostedServer {
    if (!this.registryPath) {
      this.registryPath = join(this.workDir, 'registry.json');
      writeRegistry(this.registryPath, registryOf(start.scenario));
    }
    const ledgerPath = start.database ? undefined : join(this.workDir, `ledger-${start.range.replace(/,/g, '_')}.sqlite`);
    // A ledger left by an earlier run in a given work directory must not be this run's starting point.
    if (ledgerPath) for (const suffix of ['', '-wal', '-shm']) rmSync(`${ledgerPath}${suffix}`, { force: true });
    const args = ['server', '--shards', start.range, '--broker', start.brokerUrl, '--ledger', start.database ?? `sqlite:${ledgerPath}`, '--registry', this.registryPath];
    if (start.synchronous) args.push('--synchronous', start.synchronous);
    const name = `server-${start.range}`;
    const process_: ManagedProcess = new ManagedProcess({
      name,
      args,
      // The secret travels in the environment, never on argv (readable through ps).
      env: { ...process.env, PAYFLEET_BROKER_SECRET: this.options.secret },
      ready: /ready on/,
      logDir: join(this.workDir, 'logs'),
      onOutput: (chunk) => this.ship(name, chunk),
      onUnexpectedExit: (code, signal) => this.send({ type: 'serverExited', range: start.range, code, signal }),
    });
    const hosted: HostedServer = { process: process_, ledgerPath };
    this.servers.set(start.range, hosted);
    return hosted;
  }

  /** The stopped server's ledger as one file (its WAL folded in), in chunks; returns its size in bytes. */
  private sendLedger(range: string): number {
    const hosted = this.server(range);
    if (!hosted.ledgerPath) throw new Error(`server ${range} keeps its ledger in a database`);
    if (hosted.process.alive) throw new Error(`server ${range} is still running; its ledger is read after it stopped`);
    const db = new Database(hosted.ledgerPath);
    let data: Buffer;
    try {
      db.pragma('wal_checkpoint(TRUNCATE)');
      data = db.serialize();
    } finally {
      db.close();
    }
    for (let offset = 0; offset < data.length; offset += LEDGER_CHUNK_BYTES) {
      this.send({ type: 'ledgerChunk', range, base64: data.subarray(offset, offset + LEDGER_CHUNK_BYTES).toString('base64') });
    }
    return data.length;
  }

  private samplePeaks(): void {
    const children: Array<[string, number | undefined]> = [
      ...[...this.workers].map(([i, w]): [string, number | undefined] => [`worker-${i}`, w.pid]),
      ...[...this.servers].map(([range, s]): [string, number | undefined] => [`server-${range}`, s.process.pid]),
    ];
    for (const [name, pid] of children) {
      const peak = peakRssOf(pid);
      if (peak !== undefined) this.peaks.set(name, Math.max(peak, this.peaks.get(name) ?? 0));
    }
  }

  private stats(): AgentStats {
    this.samplePeaks();
    const children = [...this.peaks].map(([name, peakRssBytes]) => ({ name, peakRssBytes }));
    const own = process.resourceUsage().maxRSS * 1024;
    return { peakRssBytes: own + children.reduce((sum, c) => sum + c.peakRssBytes, 0), children: [{ name: 'agent', peakRssBytes: own }, ...children] };
  }

  /** Every worker killed, every server stopped (SIGTERM, then SIGKILL), whatever ended the session. */
  private async stopChildren(): Promise<void> {
    for (const worker of this.workers.values()) worker.kill();
    await Promise.all([...this.servers.values()].map((s) => (s.reader?.close(), s.process.stop(2_000))));
    await Promise.all([...this.servers.values()].map((s) => s.process.closeLog()));
    await Promise.all([...this.workers.values()].map((w) => w.exited));
  }
}
