// Goal: the child processes of an mqtt-mode run — the embedded broker, the payment servers, the swarm workers —
// started, waited for, crashed for real (SIGKILL), paused (SIGSTOP/SIGCONT), restarted, and always killed when
// the run ends, also on Ctrl-C, on a thrown error and on a plain `process.exit`.
// Method: `spawn` of `node bin/payfleet.mjs <command>` (or a `fork` of the worker bundle, see `workerBundle`)
// with the child's output appended to a log file in the run directory; readiness is a line of its standard
// output matching a pattern. Every live child is in one module-level set, and an `exit` hook sends SIGKILL to each (synchronous,
// so it works even from `process.exit`). Signal handlers are installed by the run for its own lifetime.

import { fork, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync, type WriteStream } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const PAYFLEET_BIN = join(REPO_ROOT, 'bin', 'payfleet.mjs');
export const WORKER_MODULE = fileURLToPath(new URL('./worker.ts', import.meta.url));
/**
 * Where worker bundles go: inside the repository, because the bundle leaves its packages external and Node finds
 * them by walking up from the bundle's own directory to `node_modules` (a run directory may be anywhere).
 */
const BUNDLE_DIR = join(REPO_ROOT, 'node_modules', '.cache', 'payfleet');

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function killAllNow(): void {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // Already gone.
    }
  }
  live.clear();
}

function track(child: ChildProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', killAllNow);
  }
  live.add(child);
  child.once('exit', () => live.delete(child));
}

/** Kills every child process still alive (SIGKILL). */
export function killAllChildren(): void {
  killAllNow();
}

export function liveChildCount(): number {
  return live.size;
}

export class ProcessError extends Error {
  constructor(
    readonly code: 'exitedEarly' | 'startTimeout' | 'spawnFailed',
    message: string,
    readonly value: unknown,
  ) {
    super(message);
    this.name = 'ProcessError';
  }
}

export interface ManagedOptions {
  /** For messages and the log file name. */
  name: string;
  /** Arguments after `node bin/payfleet.mjs`. */
  args: string[];
  /** A line of standard output that says the process is ready; its match is returned by `start`. */
  ready: RegExp;
  logDir: string;
  startTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Called when a process that was up exits without being killed or stopped (it failed by itself). */
  onUnexpectedExit?: (code: number | null, signal: NodeJS.Signals | null) => void;
  /** Also given every chunk written to the log (an agent ships its children's logs to the coordinator). */
  onOutput?: (chunk: Buffer) => void;
}

/**
 * A process the supervisor and the fault injector control: a `ManagedProcess` here, or one that an agent runs
 * on another host (agentHub.ts `RemoteServerProcess`), controlled over the agent's channel.
 */
export interface ControlledProcess {
  readonly name: string;
  /** The agent hosting it; undefined here. */
  readonly host?: string;
  readonly pid: number | undefined;
  readonly alive: boolean;
  readonly paused: boolean;
  start(): Promise<unknown>;
  /** A crash: SIGKILL, resolved once the process is gone. */
  kill(): Promise<void>;
  /** SIGSTOP. */
  pause(): void;
  /** SIGCONT. */
  resume(): void;
  /** SIGTERM, then SIGKILL after a grace period; resolved once the process is gone. */
  stop(): Promise<void>;
  closeLog(): Promise<void>;
}

/** One `payfleet` subcommand as a child process that can be crashed and restarted with the same arguments. */
export class ManagedProcess implements ControlledProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private readonly log: WriteStream;
  starts = 0;
  paused = false;
  /** Set while a kill or stop of ours is under way, so its exit is not reported as unexpected. */
  private expectingExit = false;

  constructor(readonly options: ManagedOptions) {
    mkdirSync(options.logDir, { recursive: true });
    this.log = createWriteStream(join(options.logDir, `${options.name}.log`), { flags: 'a' });
  }

  get name(): string {
    return this.options.name;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  private write(chunk: Buffer | string): void {
    this.log.write(chunk);
    this.options.onOutput?.(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  }

  get alive(): boolean {
    const c = this.child;
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  }

  /** Spawns the process and resolves with the match of the ready line. */
  start(): Promise<RegExpMatchArray> {
    if (this.alive) throw new Error(`alreadyRunning: ${this.options.name} (pid ${this.pid})`);
    this.starts++;
    this.paused = false;
    this.expectingExit = false;
    const { name, args, ready, env } = this.options;
    const timeoutMs = this.options.startTimeoutMs ?? 30_000;
    this.write(`--- start ${this.starts}: payfleet ${args.map((a) => (a.length > 40 ? `${a.slice(0, 6)}…` : a)).join(' ')}\n`);
    // PAYFLEET_PARENT_PID: the child stops by itself when this process is gone (sim/cli/command.ts withStopSignal).
    const childEnv = { ...(env ?? process.env), PAYFLEET_PARENT_PID: String(process.pid) };
    const child = spawn(process.execPath, [...profilingArgv(name), PAYFLEET_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv });
    this.child = child;
    track(child);
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    let wasReady = false;
    child.once('exit', (code, signal) => {
      if (wasReady && !this.expectingExit && this.child === child) this.options.onUnexpectedExit?.(code, signal);
    });
    return new Promise((resolve, reject) => {
      let buffered = '';
      let settled = false;
      const timer = setTimeout(() => finish(new ProcessError('startTimeout', `${name}: not ready after ${timeoutMs} ms (waiting for ${ready})`, timeoutMs)), timeoutMs);
      const finish = (outcome: RegExpMatchArray | Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (outcome instanceof Error) reject(outcome);
        else resolve(outcome);
      };
      child.stdout!.on('data', (chunk: Buffer) => {
        this.write(chunk);
        if (settled) return;
        buffered += chunk.toString();
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        for (const line of lines) {
          const match = ready.exec(line);
          if (match) {
            wasReady = true;
            return finish(match);
          }
        }
      });
      child.stderr!.on('data', (chunk: Buffer) => this.write(chunk));
      child.once('error', (error) => finish(new ProcessError('spawnFailed', `${name}: ${error.message}`, error)));
      child.once('exit', (code, signal) => {
        this.write(`--- exit ${code ?? signal}\n`);
        finish(new ProcessError('exitedEarly', `${name}: exited with ${code ?? signal} before it was ready (see ${join(this.options.logDir, `${name}.log`)})`, code ?? signal));
      });
    });
  }

  private signal(signal: NodeJS.Signals): boolean {
    if (!this.alive) return false;
    this.child!.kill(signal);
    return true;
  }

  /** A crash: SIGKILL, resolved once the process is gone. */
  async kill(): Promise<void> {
    this.expectingExit = true;
    if (this.paused) this.resume();
    if (this.signal('SIGKILL')) await this.exited;
  }

  /** SIGSTOP: the process keeps its sockets but does nothing (a partition seen from outside). */
  pause(): void {
    if (this.signal('SIGSTOP')) this.paused = true;
  }

  resume(): void {
    if (this.paused && this.signal('SIGCONT')) this.paused = false;
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  async stop(graceMs = 5_000): Promise<void> {
    if (!this.alive) return;
    this.expectingExit = true;
    this.resume();
    this.signal('SIGTERM');
    const lingering = setTimeout(() => this.signal('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(lingering);
  }

  closeLog(): Promise<void> {
    return new Promise((resolve) => this.log.end(resolve));
  }
}

/**
 * With PAYFLEET_CPU_PROF_DIR set, every child writes a V8 CPU profile there when it exits (open it in Chrome's
 * DevTools or speedscope): how a person finds where an mqtt run's time goes, process by process. Node refuses
 * --cpu-prof in NODE_OPTIONS, hence this variable.
 */
function profilingArgv(name: string): string[] {
  const dir = process.env.PAYFLEET_CPU_PROF_DIR;
  return dir ? ['--cpu-prof', `--cpu-prof-dir=${join(dir, name)}`] : [];
}

/**
 * Node flags of a worker. Source maps for readable stack traces (a few MB of RSS per worker at most, measured). A
 * young generation capped at 4 MB semi-spaces instead of V8's 16 MB: a worker's garbage is short-lived messages
 * and timers, so scavenges stay cheap, and each worker keeps about 20 MB less RSS (measured with 4,000 terminals:
 * swarm RSS 369 → 324 MiB, payments/s within the noise of the shared machine).
 */
const WORKER_NODE_FLAGS = ['--enable-source-maps', '--max-semi-space-size=4'];

let workerBundlePath: string | undefined;

/**
 * The worker module and everything it imports from this repository as one JavaScript file, built once per process
 * (about 0.2 s) and named by its content hash, so concurrent runs and test files share or replace it atomically.
 * Why not `--import tsx`: tsx's loader runs a hooks thread with its own V8 isolate in every worker (about 30 MB
 * of RSS each, measured), and its transform keeps function names with a `name` property per closure (about 2 KB
 * per terminal). Packages stay external (`packages: 'external'`), so they load exactly as under tsx. The source
 * map is written beside the bundle and the worker runs with `--enable-source-maps`, so stack traces in its log
 * name the TypeScript files and lines.
 */
export function workerBundle(): string {
  if (workerBundlePath && existsSync(workerBundlePath)) return workerBundlePath;
  const result = buildSync({
    entryPoints: [WORKER_MODULE],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    sourcemap: true,
    // Stack traces need the mappings only; the sources themselves would add their whole text to every worker.
    sourcesContent: false,
    outdir: BUNDLE_DIR,
    entryNames: 'worker-[hash]',
    outExtension: { '.js': '.mjs' },
    write: false,
    logLevel: 'silent',
  });
  mkdirSync(BUNDLE_DIR, { recursive: true });
  // The map first, so a bundle that exists always has its map; each file appears whole (write, then rename).
  const files = [...result.outputFiles].sort((a, b) => Number(b.path.endsWith('.map')) - Number(a.path.endsWith('.map')));
  for (const file of files) {
    if (existsSync(file.path)) continue;
    const partial = join(BUNDLE_DIR, `.${basename(file.path)}.${process.pid}.partial`);
    writeFileSync(partial, file.contents);
    renameSync(partial, file.path);
  }
  const bundle = files.find((file) => file.path.endsWith('.mjs'));
  if (!bundle) throw new ProcessError('spawnFailed', `esbuild produced no worker bundle from ${WORKER_MODULE}`, result.outputFiles.map((f) => f.path));
  pruneBundles(new Set(files.map((file) => basename(file.path))));
  workerBundlePath = bundle.path;
  return bundle.path;
}

/** How many bundles of older sources are kept (the newest), for runs still using them. */
const OLDER_BUNDLES_KEPT = 4;

/** Removes all but the newest few bundles of older sources, so the cache does not grow with every edit. */
function pruneBundles(current: Set<string>): void {
  const older = readdirSync(BUNDLE_DIR)
    .filter((name) => name.startsWith('worker-') && name.endsWith('.mjs') && !current.has(name))
    .map((name) => ({ name, mtimeMs: statSync(join(BUNDLE_DIR, name), { throwIfNoEntry: false })?.mtimeMs ?? 0 }))
    .sort((a, b) => b.mtimeMs - a.mtimeMs);
  for (const { name } of older.slice(OLDER_BUNDLES_KEPT)) {
    rmSync(join(BUNDLE_DIR, name), { force: true });
    rmSync(join(BUNDLE_DIR, `${name}.map`), { force: true });
  }
}

/**
 * Forks a swarm worker with an IPC channel; its output goes to `logDir/worker-{i}.log` (and to `onOutput`, when
 * given: an agent ships it to the coordinator).
 */
export function forkWorker(index: number, logDir: string, onOutput?: (chunk: Buffer) => void): { child: ChildProcess; exited: Promise<void>; log: WriteStream } {
  mkdirSync(logDir, { recursive: true });
  const log = createWriteStream(join(logDir, `worker-${index}.log`), { flags: 'a' });
  const child = fork(workerBundle(), [], { execArgv: [...profilingArgv(`worker-${index}`), ...WORKER_NODE_FLAGS], stdio: ['ignore', 'pipe', 'pipe', 'ipc'], cwd: REPO_ROOT });
  track(child);
  const output = (chunk: Buffer): void => {
    log.write(chunk);
    onOutput?.(chunk);
  };
  child.stdout!.on('data', output);
  child.stderr!.on('data', output);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { child, exited, log };
}
