// Goal: the coordinator's side of a run over agents — a WebSocket endpoint agents connect to (only with the run's
// token: any other connection is refused with 401 and logged, and the run goes on), the wait for N of them, and,
// per agent, the workers and payment servers placed on it seen as local ones (agentRemotes.ts): a
// `WorkerTransport` for each worker (the same ToWorker/FromWorker messages), a `ControlledProcess` for each server
// (start, SIGKILL, SIGSTOP/SIGCONT, stop, done by the agent), its ledger figures and file, its children's logs
// written to logs/ here, and its peak RSS for summary.json. An agent lost mid-run fails the run, naming the agent
// and what it held.
// Method: `ws` (WebSocketServer with verifyClient). Requests carry an id and are answered by a reply with that id.
// A ping every 5 s: an agent that stops answering (its host gone, not just its process) is dropped after 15 s.

import { createWriteStream, mkdirSync, writeFileSync, rmSync, type WriteStream } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { IncomingMessage } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Scenario } from '../scenario/types.ts';
import { isAgentTokenValid, parseWireMessage, type AgentChannel, type AgentHello, type AgentRequest, type AgentStats, type FromAgent, type ToAgent } from './agentProtocol.ts';
import { RemoteServerProcess, RemoteWorkerTransport } from './agentRemotes.ts';
import { HarnessError } from './runOptions.ts';
import type { RemoteLedgerFigures, ServerGroup, ServerPlacementRequest } from './supervisor.ts';

const PING_EVERY_REAL_MS = 5_000;
const PONG_MISSED_LIMIT = 3;
/** A request an agent does not answer in this time fails (a server start is the slowest: a process and a broker connection). */
const REQUEST_TIMEOUT_REAL_MS = 60_000;

export interface AgentHubOptions {
  /** Address to listen on; the advertised URL uses it, or this host's name when it is a wildcard. */
  host: string;
  port: number;
  secret: string;
  /** Agents the run takes; a connection beyond them is refused (409). */
  expected: number;
  logDir: string;
  log(line: string): void;
  /** An agent connected for this run went away before the run ended. */
  onAgentLost(agent: AgentLink, why: string): void;
}

/** The host name others can reach an address by: itself, unless it is a wildcard. */
export function advertisedHost(host: string): string {
  return host === '0.0.0.0' || host === '::' || host === '' ? hostname() : host;
}

export class AgentHub {
  readonly agents: AgentLink[] = [];
  private readonly logs = new Map<string, WriteStream>();
  private closing = false;
  private readonly wanted: number;
  private arrived: () => void = () => undefined;
  private readonly pinger: NodeJS.Timeout;

  private constructor(
    private readonly server: WebSocketServer,
    private readonly options: AgentHubOptions,
    readonly url: string,
  ) {
    this.wanted = options.expected;
    server.on('connection', (socket, request) => this.accept(socket, request));
    this.pinger = setInterval(() => {
      for (const agent of this.agents) agent.ping();
    }, PING_EVERY_REAL_MS);
    this.pinger.unref();
  }

  /** Listens on host:port (0: any free port); rejects when it cannot. */
  static listen(options: AgentHubOptions): Promise<AgentHub> {
    return new Promise((resolve, reject) => {
      let hub: AgentHub | undefined;
      const server = new WebSocketServer({
        host: options.host,
        port: options.port,
        // Ledger files come in chunks, a worker's init carries the scenario: generous, but bounded.
        maxPayload: 256 * 1024 * 1024,
        verifyClient: (info: { req: IncomingMessage }, done: (ok: boolean, code?: number, message?: string) => void) => {
          const from = `${info.req.socket.remoteAddress ?? '?'}:${info.req.socket.remotePort ?? '?'}`;
          if (!isAgentTokenValid(options.secret, info.req.headers.authorization)) {
            options.log(`  agent connection from ${from} refused: no valid token (it must be started with this run's PAYFLEET_BROKER_SECRET)`);
            return done(false, 401, 'a valid agent token is required');
          }
          if (hub && hub.agents.length >= hub.wanted) {
            options.log(`  agent connection from ${from} refused: the run already has its ${hub.wanted} agent(s)`);
            return done(false, 409, 'the run already has its agents');
          }
          done(true);
        },
      });
      server.once('error', reject);
      server.once('listening', () => {
        server.off('error', reject);
        const address = server.address();
        const port = typeof address === 'object' && address ? address.port : options.port;
        hub = new AgentHub(server, options, `ws://${advertisedHost(options.host)}:${port}`);
        resolve(hub);
      });
    });
  }

  /** Resolves once the expected agents have said hello; rejects with `agentsMissing` after `timeoutMs`. */
  async waitForAgents(timeoutMs: number): Promise<AgentLink[]> {
    const count = this.wanted;
    if (this.agents.filter((a) => a.hello).length < count) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          const came = this.agents.filter((a) => a.hello).map((a) => a.name);
          reject(new HarnessError('agentsMissing', `${came.length} of ${count} agent(s) connected to ${this.url} within ${Math.round(timeoutMs / 1000)} s${came.length ? ` (${came.join(', ')})` : ''}; start one on each host with: payfleet agent --coordinator ${this.url}`, came.length));
        }, timeoutMs);
        this.arrived = () => {
          if (this.agents.filter((a) => a.hello).length < count) return;
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return this.agents.filter((a) => a.hello);
  }

  private accept(socket: WebSocket, request: IncomingMessage): void {
    const agent = new AgentLink(socket, `${request.socket.remoteAddress ?? '?'}`, (name, text) => this.writeLog(name, text));
    this.agents.push(agent);
    agent.onHello = () => {
      // Logs, messages and the summary name agents: two of one name would be told apart by nothing.
      if (this.agents.some((other) => other !== agent && other.hello && other.name === agent.name)) {
        this.options.log(`  agent connection from ${agent.address} refused: an agent named ${agent.name} is already in the run (give each a --name of its own)`);
        agent.hello = undefined;
        socket.close(4009, `an agent named ${agent.name} is already in the run`);
        return;
      }
      this.options.log(`  agent ${agent.name} connected from ${agent.address} (host ${agent.hello!.host}, capacity ${agent.capacity} terminals)`);
      this.arrived();
    };
    socket.on('close', (code, reason) => {
      const why = `its connection closed (${code}${reason.length ? ` ${reason.toString()}` : ''})`;
      if (!this.closing && agent.hello) this.options.onAgentLost(agent, why);
      agent.lost(why);
      if (!agent.hello) this.agents.splice(this.agents.indexOf(agent), 1);
    });
  }

  private writeLog(name: string, text: string): void {
    let stream = this.logs.get(name);
    if (!stream) {
      mkdirSync(this.options.logDir, { recursive: true });
      stream = createWriteStream(join(this.options.logDir, `${name}.log`), { flags: 'a' });
      this.logs.set(name, stream);
    }
    stream.write(text);
  }

  /** The run is over: every agent is told so (it stops its children and exits), then the endpoint closes. */
  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.pinger);
    for (const agent of this.agents) agent.bye();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await Promise.all([...this.logs.values()].map((s) => new Promise((r) => s.end(r))));
  }
}

/** One connected agent: what it said about itself, what was placed on it, and the channel to it. */
export class AgentLink implements AgentChannel {
  hello: AgentHello | undefined;
  onHello: () => void = () => undefined;
  readonly workers = new Map<number, RemoteWorkerTransport>();
  readonly servers = new Map<string, RemoteServerProcess>();
  /** Terminals placed on its workers. */
  terminals = 0;
  stats: AgentStats | undefined;
  private nextId = 1;
  /** Why the connection is gone; undefined while it is up. */
  private readonly pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  private readonly ledgerChunks = new Map<string, Buffer[]>();
  private missedPongs = 0;
  gone: string | undefined;

  constructor(
    private readonly socket: WebSocket,
    readonly address: string,
    private readonly writeLog: (name: string, text: string) => void,
  ) {
    socket.on('message', (data) => this.receive(parseWireMessage<FromAgent>(data)));
    socket.on('pong', () => (this.missedPongs = 0));
  }

  get name(): string {
    return this.hello?.name ?? this.address;
  }

  get capacity(): number {
    return this.hello?.capacity ?? 0;
  }

  /** What it holds, for messages: its workers and servers. */
  get holding(): string {
    const workers = [...this.workers.keys()];
    const servers = [...this.servers.keys()];
    return `workers ${workers.length ? workers.join(',') : 'none'}, servers ${servers.length ? servers.join(' ') : 'none'}`;
  }

  send(message: ToAgent): void {
    if (this.gone === undefined && this.socket.readyState === this.socket.OPEN) this.socket.send(JSON.stringify(message));
  }

  request(request: AgentRequest, timeoutMs = REQUEST_TIMEOUT_REAL_MS): Promise<unknown> {
    if (this.gone !== undefined) return Promise.reject(new HarnessError('agentLost', `agent ${this.name}: ${this.gone}`, this.name));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new HarnessError('agentTimeout', `agent ${this.name} did not answer ${request.op} within ${timeoutMs} ms`, request.op));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (value) => (clearTimeout(timer), resolve(value)),
        reject: (error) => (clearTimeout(timer), reject(error)),
      });
      this.send({ type: 'request', id, ...request });
    });
  }

  ping(): void {
    if (this.gone !== undefined) return;
    if (++this.missedPongs > PONG_MISSED_LIMIT) {
      this.terminate();
      return;
    }
    this.socket.ping();
  }

  /** Drops the connection at once, without a goodbye (an agent that stopped answering). */
  terminate(): void {
    this.socket.terminate();
  }

  bye(): void {
    this.send({ type: 'bye' });
    this.socket.close(1000, 'run over');
  }

  /** The connection is gone: everything waiting on it fails, its workers and servers are gone too. */
  lost(why: string): void {
    if (this.gone !== undefined) return;
    this.gone = why;
    for (const { reject } of this.pending.values()) reject(new HarnessError('agentLost', `agent ${this.name}: ${why}`, this.name));
    this.pending.clear();
    for (const worker of this.workers.values()) worker.exitedWith(null, 'agentLost');
    for (const server of this.servers.values()) server.gone();
  }

  private receive(message: FromAgent | undefined): void {
    if (!message) return;
    switch (message.type) {
      case 'hello':
        this.hello = message;
        return this.onHello();
      case 'workerStarted':
        return this.workers.get(message.worker)?.started(message.pid);
      case 'fromWorker':
        return this.workers.get(message.worker)?.deliver(message.message);
      case 'workerExited':
        return this.workers.get(message.worker)?.exitedWith(message.code, message.signal);
      case 'serverExited':
        return this.servers.get(message.range)?.exitedBySelf(message.code, message.signal);
      case 'log':
        return this.writeLog(message.name, message.text);
      case 'ledgerChunk': {
        const chunks = this.ledgerChunks.get(message.range) ?? [];
        chunks.push(Buffer.from(message.base64, 'base64'));
        this.ledgerChunks.set(message.range, chunks);
        return;
      }
      case 'reply': {
        const waiting = this.pending.get(message.id);
        this.pending.delete(message.id);
        if (!waiting) return;
        if (message.ok) waiting.resolve(message.value);
        else waiting.reject(new HarnessError('agentRefused', `agent ${this.name}: ${message.error}`, this.name));
        return;
      }
      default:
        return;
    }
  }

  /** A worker placed on this agent, reached through it. */
  placeWorker(index: number, terminals: number): RemoteWorkerTransport {
    const transport = new RemoteWorkerTransport(this, index);
    this.workers.set(index, transport);
    this.terminals += terminals;
    this.send({ type: 'startWorker', worker: index });
    return transport;
  }

  /** A server placed on this agent: its process handle, and (SQLite) its ledger's figures and file through the agent. */
  placeServer(request: ServerPlacementRequest, scenario: Scenario): Omit<ServerGroup, 'shards' | 'range' | 'ledger'> {
    const process = new RemoteServerProcess(this, request, scenario);
    this.servers.set(request.range, process);
    if (request.database) return { process };
    const range = request.range;
    return {
      process,
      remoteFigures: async () => (await this.request({ op: 'ledgerFigures', range }, 2_000)) as RemoteLedgerFigures,
      fetchLedger: async () => {
        if (request.ledger.engine !== 'sqlite') return;
        this.ledgerChunks.set(range, []);
        const bytes = (await this.request({ op: 'fetchLedger', range })) as number;
        const data = Buffer.concat(this.ledgerChunks.get(range) ?? []);
        this.ledgerChunks.delete(range);
        if (data.length !== bytes) throw new HarnessError('ledgerFetch', `agent ${this.name}: ledger of server ${range} arrived with ${data.length} of ${bytes} bytes`, range);
        for (const suffix of ['', '-wal', '-shm']) rmSync(`${request.ledger.path}${suffix}`, { force: true });
        writeFileSync(request.ledger.path, data);
      },
    };
  }

  /** Asks for its peak RSS (kept for the summary); a lost agent keeps none. */
  async collectStats(): Promise<void> {
    this.stats = (await this.request({ op: 'stats' }, 5_000)) as AgentStats;
  }
}
