import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXIT_THRESHOLD } from './command.ts';
import { exitStatusOf } from './commands/run.ts';

const BIN = join(import.meta.dirname, '../../bin/payfleet.mjs');

const SCENARIO = `name: slo
seed: 2
duration: 2m
drain: 5m
crypto: sim
population:
  terminals: 10
  apps: [{ name: shop, type: telepayment, ordersPerHour: 1, amount: { uniformMinor: [2500, 3000] } }]
arrival: { executor: constant-arrival-rate, rate: 1 }
thresholds:
  - "lost == 0"
`;

function run(thresholds: string[]) {
  const dir = mkdtempSync(join(tmpdir(), 'payfleet-slo-'));
  const file = join(dir, 'slo.yaml');
  writeFileSync(file, SCENARIO + thresholds.map((t) => `  - ${JSON.stringify(t)}\n`).join(''));
  const out = join(dir, 'run');
  const result = spawnSync(process.execPath, [BIN, 'run', file, '--out', out, '--quiet'], { encoding: 'utf8', timeout: 120_000 });
  return { status: result.status, out: result.stdout, err: result.stderr, summary: () => JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) };
}

describe('payfleet run: thresholds and exit status', () => {
  it('exits 0 when every threshold passes and records each in summary.thresholds', () => {
    const r = run(['latency.remote.p99 < 10s', 'dropped == 0']);
    expect(r.status, r.err).toBe(0);
    expect(r.summary().thresholds).toEqual([
      { expression: 'lost == 0', pass: true, actual: 0 },
      { expression: 'latency.remote.p99 < 10s', pass: true, actual: expect.any(Number) },
      { expression: 'dropped == 0', pass: true, actual: 0 },
    ]);
  });

  it('exits 99 when a threshold fails (k6), naming it', () => {
    const r = run(['latency.remote.p99 < 1ms']);
    expect(r.status, r.err).toBe(EXIT_THRESHOLD);
    expect(r.out).toMatch(/FAIL threshold latency\.remote\.p99 < 1ms: actual \d+/);
    expect(r.summary().ok).toBe(true);
  });

  it('exits 2 on a threshold that does not parse, with its line and field, before running', () => {
    const r = run(['latency.remote.p99 < fast']);
    expect(r.status).toBe(2);
    expect(r.err).toMatch(/slo\.yaml:12:\d+: thresholds\[1\]: cannot parse/);
  });

  it('lets a violation (1) win over a failed threshold (99)', () => {
    const failed = [{ expression: 'lost == 0', pass: false, actual: 1 }];
    expect(exitStatusOf({ ok: false, thresholds: failed })).toBe(1);
    expect(exitStatusOf({ ok: true, thresholds: failed })).toBe(99);
    expect(exitStatusOf({ ok: true, thresholds: [] })).toBe(0);
    expect(exitStatusOf({ ok: true })).toBe(0);
  });

  it('exits 3 when the environment failed and only INV-7 was violated; a safety violation (1) still wins', () => {
    const environment = { ok: false, causes: ['2 endpoint(s) never connected'], neverConnected: { count: 2, ids: ['t3', 't7'] } };
    const ledger = { approvedAmountMinor: 0, postedAmountMinor: 0, lost: 0, heldInJournals: 3, duplicated: 0, unexpected: 0, sumOfBalancesMinor: 0 };
    const only7 = [{ id: 'INV-4', name: 'nothing lost', checks: 5, violations: 0 }, { id: 'INV-7', name: 'liveness', checks: 5, violations: 2 }];
    expect(exitStatusOf({ ok: false, environment, ledger, invariants: only7 })).toBe(3);
    expect(exitStatusOf({ ok: true, environment, ledger, invariants: only7.map((i) => ({ ...i, violations: 0 })) })).toBe(3);
    expect(exitStatusOf({ ok: false, environment, ledger, invariants: [{ ...only7[0]!, violations: 1 }, only7[1]!] })).toBe(1);
    expect(exitStatusOf({ ok: false, environment: { ...environment, ok: true, causes: [], neverConnected: { count: 0, ids: [] } }, ledger, invariants: only7 })).toBe(1);
  });
});
