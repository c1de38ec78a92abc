// Goal: shared material for the tests of sim/mqtt: a SQLite store that stands in for the in-memory one in the
// domain suites, and helpers to run `payfleet server` as a real child process and read its output.
// Method: real files in a temporary directory, real processes through bin/payfleet.mjs — no mocks.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SqliteLedgerStore } from './sqliteLedgerStore.ts';

let storeDir: string | undefined;
const opened: SqliteLedgerStore[] = [];

/** A fresh ledger file per instance, so each test starts from an empty ledger as it does in memory. */
export class FileBackedStore extends SqliteLedgerStore {
  constructor() {
    storeDir ??= mkdtempSync(join(tmpdir(), 'payfleet-suites-'));
    super(join(storeDir, `ledger-${opened.length}.db`));
    opened.push(this);
  }
}

/** Closes every store the suites opened and removes their files; returns how many there were. */
export function closeFileBackedStores(): number {
  for (const store of opened) store.close();
  if (storeDir) rmSync(storeDir, { recursive: true, force: true });
  return opened.length;
}

// ------------------------------------------------------------------ `payfleet server` as a child process

export const PAYFLEET_BIN = fileURLToPath(new URL('../../bin/payfleet.mjs', import.meta.url));

export interface ChildRun {
  child: ChildProcess;
  /** Every line printed so far, stdout and stderr apart. */
  stdout: string[];
  stderr: string[];
  /** Resolves with the first stdout line matching `pattern` (already printed or later); rejects if the process exits first. */
  line(pattern: RegExp): Promise<string>;
  /** Resolves when the process has exited and its output is drained. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs `node bin/payfleet.mjs ...args` and records its output line by line. */
export function runPayfleet(args: readonly string[], env: NodeJS.ProcessEnv = process.env): ChildRun {
  const child = spawn(process.execPath, [PAYFLEET_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const waiters = new Set<() => void>();
  const collect = (stream: NodeJS.ReadableStream, lines: string[]) => {
    let buffered = '';
    stream.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const parts = buffered.split('\n');
      buffered = parts.pop() ?? '';
      lines.push(...parts);
      for (const waiter of [...waiters]) waiter();
    });
  };
  collect(child.stdout!, stdout);
  collect(child.stderr!, stderr);
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => {
      done = true;
      for (const waiter of [...waiters]) waiter();
      resolve({ code, signal });
    }),
  );
  return {
    child,
    stdout,
    stderr,
    exited,
    line(pattern) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = stdout.find((l) => pattern.test(l));
          if (found !== undefined) {
            waiters.delete(check);
            resolve(found);
          } else if (done) {
            waiters.delete(check);
            reject(new Error(`payfleet ${args[0]} exited before printing ${pattern}; stderr: ${stderr.join('\n')}`));
          }
        };
        waiters.add(check);
        check();
      });
    },
  };
}

/**
 * Runs a child script (`node --import tsx script ...args`) until `count` lines of its standard output satisfy
 * `pick`, then kills it with SIGKILL `delayMs` later (tests vary the delay so the kill lands at different points
 * of a transaction). Resolves with every picked line the child printed before it died ('close' comes after the
 * pipes are drained); rejects if the child exits by itself.
 */
export function runUntilKilled<T>(script: string, args: readonly string[], pick: (line: string) => T | undefined, count: number, delayMs: number): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const picked: T[] = [];
    let buffered = '';
    let stderr = '';
    let armed = false;
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        const item = pick(line);
        if (item !== undefined) picked.push(item);
      }
      if (picked.length >= count && !armed) {
        armed = true;
        setTimeout(() => child.kill('SIGKILL'), delayMs);
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`${script} exited with ${code}: ${stderr}`));
      else resolve(picked);
    });
  });
}
