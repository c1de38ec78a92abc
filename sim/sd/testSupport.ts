// Goal: shared material for the tests of sim/sd and sim/mqtt: a SQLite store that stands in for the in-memory one
// in the domain suites, helpers to run `payfleet server` and crash children as real processes and read their output,
// and the check of a ledger after the group-commit batch child was killed (SQLite and Postgres alike).
// Method: real files in a temporary directory, real processes through bin/payfleet.mjs — no mocks.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect } from 'vitest';
import { Ledger, meansAccount } from '../../machines/domain/ledger.ts';
import type { DurableLedgerStore } from './ledgerSpec.ts';
import { SqliteLedgerStore, type SynchronousMode } from './sqliteLedgerStore.ts';

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
  /**
   * Resolves with the first stdout line matching `pattern` (already printed or later); rejects if the process exits
   * first, or after `timeoutMs` (default 30 s) naming the pattern and the output so far, so a hang names its step
   * instead of running into the test's own timeout.
   */
  line(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves when the process has exited and its output is drained. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** How long `ChildRun.line` waits by default: a server starts in well under a second alone, seconds under load. */
const LINE_TIMEOUT_MS = 30_000;

/** `work`, or a rejection naming `step` once `timeoutMs` have passed: a hang in a test names the step that hung. */
export async function within<T>(work: Promise<T>, timeoutMs: number, step: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${step}: not done within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
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
    line(pattern, timeoutMs = LINE_TIMEOUT_MS) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`payfleet ${args[0]} (pid ${child.pid}) printed no line matching ${pattern} within ${timeoutMs} ms; stdout: ${stdout.slice(-20).join('\n')}; stderr: ${stderr.slice(-20).join('\n')}`));
        }, timeoutMs);
        const check = () => {
          const found = stdout.find((l) => pattern.test(l));
          if (found !== undefined) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve(found);
          } else if (done) {
            clearTimeout(timer);
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

/** Runs a child script (`node --import tsx script ...args`) to its end; resolves with its exit and output lines. */
export function runChildToEnd(script: string, args: readonly string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string[]; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout: out.split('\n').filter((l) => l !== ''), stderr }));
  });
}

// ------------------------------------------------------------------ the group-commit batch child (crash tests)

export const BATCH_CHILD = fileURLToPath(new URL('./groupCommitBatch.child.ts', import.meta.url));
// As in the child (importing it would run it).
export const BATCH_MEANS = 10;
export const BATCH_OPENING_MINOR = 1_000_000;
export const BATCH_SIZE = 8;

export interface BatchAnswer { reqId: string; code: string; txId: string; counter: number }

export function parseBatchAnswer(line: string): BatchAnswer | undefined {
  const [word, reqId, code, txId, counter] = line.split(' ');
  return word === 'answered' ? { reqId: reqId!, code: code!, txId: txId!, counter: Number(counter) } : undefined;
}

/** Runs the batch child on `ledger` until it has printed `answers` answers, then kills it with SIGKILL `delayMs` later. */
export function answerUntilKilled(ledger: string, synchronous: SynchronousMode | 'full-deferred', tag: string, answers: number, delayMs: number): Promise<BatchAnswer[]> {
  return runUntilKilled(BATCH_CHILD, [ledger, synchronous, tag], parseBatchAnswer, answers, delayMs);
}

/** Checks a ledger against every answer the killed batch children handed back. */
export function checkBatchLedger(store: DurableLedgerStore, answered: readonly BatchAnswer[], kills: number): void {
  const ledger = new Ledger(store);
  for (const a of answered) {
    // [INV-4 nothing lost] an answer that left the process is on disk, with the same outcome.
    expect(store.getResult('p1', a.reqId)?.result.code, a.reqId).toBe(a.code);
    if (a.code === 'ok') {
      expect(ledger.postingOf(a.txId)?.via, a.txId).toBe('debit');
      expect(store.getCounterUse('p1', a.counter), a.txId).toBe(a.txId);
    } else {
      // A refusal rolled back only itself: its counter use and anything else it wrote are gone.
      expect(a.code).toBe('insufficientFunds');
      expect(ledger.postingOf(a.txId), a.txId).toBeUndefined();
      expect(store.getCounterUse('p1', a.counter), a.txId).toBeUndefined();
    }
  }
  // Beyond what was printed, at most the batch in flight at each kill may have been committed.
  const postings = ledger.postings();
  const printedOk = answered.filter((a) => a.code === 'ok').length;
  expect(postings.length).toBeGreaterThanOrEqual(printedOk);
  expect(postings.length - printedOk).toBeLessThanOrEqual(BATCH_SIZE * kills);
  // [INV-3 conservation], and each means holds its opening balance less exactly what was posted from it.
  expect(store.sumOfBalancesMinor()).toBe(0);
  for (let m = 0; m < BATCH_MEANS; m++) {
    const spent = postings.filter((p) => p.meansId === `m${m}`).reduce((sum, p) => sum + p.amountMinor!, 0);
    expect(store.getAccount(meansAccount(`m${m}`))?.balanceMinor).toBe(BATCH_OPENING_MINOR - spent);
  }
}

/**
 * Imports the store, ledger and server-rule suites of machines/domain into the calling test file (whose vi.mock has
 * put a durable store in place of MemoryLedgerStore), and fails the file if none of them opened such a store: a
 * substitution that silently did not take would otherwise pass as the in-memory suites.
 */
export async function importDomainLedgerSuites(storeName: string, closeAll: () => number): Promise<void> {
  await import('../../machines/domain/ledgerStore.test.ts');
  await import('../../machines/domain/ledger.test.ts');
  await import('../../machines/domain/ledgerTopUps.test.ts');
  await import('../../machines/domain/serverRules.test.ts');
  afterAll(() => {
    if (closeAll() === 0) throw new Error(`no ${storeName} store was opened: the MemoryLedgerStore substitution did not take`);
  });
}

/** The error `fn` throws, or undefined when it returns: for tests that check an error's class and fields. */
export function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return undefined;
}
