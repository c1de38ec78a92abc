// Goal: what the tests of whole mqtt runs share: a temporary run directory per run, removed after the file's tests,
// and the ledger verdict every run that must lose nothing is held to.
// Method: vitest's afterAll removes the directories; the verdict reads the run's summary.json figures and puts the
// run's own output in every failure message, so a failing run shows what it printed.

import { afterAll, expect } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunSummary } from '../run/summary.ts';

/** A maker of fresh run directories named `<prefix>…` in the temp dir, all removed after the calling file's tests. */
export function runDirs(prefix: string): () => string {
  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    dirs.push(dir);
    return dir;
  };
}

export function readSummary(dir: string): RunSummary {
  return JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as RunSummary;
}

/**
 * The ledger came out whole: nothing lost, posted twice or unexpected, balances summing to zero, every approved
 * amount posted, nothing left to remit, every invariant held and the run OK. `context` goes into each failure.
 */
export function expectLedgerWhole(summary: RunSummary, context: string): void {
  expect(summary.ledger.lost, context).toBe(0);
  expect(summary.ledger.duplicated, context).toBe(0);
  expect(summary.ledger.unexpected, context).toBe(0);
  expect(summary.ledger.sumOfBalancesMinor, context).toBe(0);
  expect(summary.ledger.postedAmountMinor, context).toBe(summary.ledger.approvedAmountMinor);
  expect(summary.remittance.pendingAtEnd, context).toBe(0);
  for (const invariant of summary.invariants) expect(invariant.violations, `${invariant.id}: ${context}`).toBe(0);
  expect(summary.ok, context).toBe(true);
}
