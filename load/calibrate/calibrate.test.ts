import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { CALIBRATED_KINDS, parseCalibration, QUANTILES } from '../../sim/scenario/calibration.ts';
import { quantileTable } from './command.ts';

const BIN = join(import.meta.dirname, '../../bin/payfleet.mjs');

describe('payfleet calibrate', () => {
  it('measures every request kind and the group commit on a real SQLite ledger, and writes a valid, labelled file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'payfleet-calibrate-test-'));
    const out = join(dir, 'cal', 'tiny.json');
    const result = spawnSync(process.execPath, [BIN, 'calibrate', '--crypto', 'sim', '--samples', '6', '--items', '3', '--batch-sizes', '1,4', '--server-only', '--out', out], { encoding: 'utf8', timeout: 60_000 });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/\| remit\.grouped \| 6 \|/);
    const calibration = parseCalibration(JSON.parse(readFileSync(out, 'utf8')));
    expect(calibration.crypto).toBe('sim');
    expect(calibration.machine.cores).toBe(cpus().length);
    expect(calibration.machine.cpuModel).toBe(cpus()[0]!.model);
    expect(Object.keys(calibration.kinds).sort()).toEqual([...CALIBRATED_KINDS, 'topUp'].sort());
    // A top-up, timed as the extra time of a debit that makes one.
    expect(calibration.kinds.topUp!.samples).toBe(6);
    expect(calibration.kinds.topUp!.quantilesUs[QUANTILES.indexOf(0.5)]).toBeGreaterThan(0);
    expect(calibration.kinds.auth.samples).toBe(12);
    // A durable commit and a signed request take time: nothing measured as zero.
    expect(calibration.kinds.debit.quantilesUs[QUANTILES.indexOf(0.5)]).toBeGreaterThan(0);
    expect(calibration.groupCommit.batchSizes).toEqual([1, 4]);
    expect(calibration.groupCommit.commitQuantilesUs[0]![QUANTILES.indexOf(0.5)]).toBeGreaterThan(0);
    expect(existsSync(`${out}.tmp`)).toBe(false);
    expect(calibration.testBed).toBeUndefined();

    // --test-bed-only adds what a real mqtt run's processes cost per remote order, the server measurements kept.
    const added = spawnSync(process.execPath, [BIN, 'calibrate', '--test-bed-only', out, '--test-bed-rates', '10,30', '--test-bed-window', '2s'], { encoding: 'utf8', timeout: 120_000 });
    expect(added.status, added.stderr).toBe(0);
    expect(added.stdout).toMatch(/\| swarm \| [\d.]+ \| [\d.]+ \|/);
    const withTestBed = parseCalibration(JSON.parse(readFileSync(out, 'utf8')));
    expect(withTestBed.kinds).toEqual(calibration.kinds);
    const testBed = withTestBed.testBed!;
    expect(testBed.cores).toBe(cpus().length);
    expect(testBed.runs.map((r) => r.rate)).toEqual([10, 30]);
    // Every process of the run spends CPU on remote orders: none measured as nothing.
    for (const role of ['servers', 'broker', 'swarm'] as const) expect(testBed.runs[1]!.cpuMsPerOrder[role], role).toBeGreaterThan(0);
    expect(testBed.cpuMsPerOrder.swarm + testBed.fixedCpuMsPerSecond.swarm).toBeGreaterThan(0);
  }, 180_000);

  it('refuses bad flags with exit 2 and writes nothing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'payfleet-calibrate-test-'));
    const out = join(dir, 'x.json');
    for (const args of [['--batch-sizes', '1,x'], ['--ledger', 'mysql://h/db'], ['--test-bed-rates', '10'], ['--test-bed-window', '0s']]) {
      const result = spawnSync(process.execPath, [BIN, 'calibrate', ...args, '--out', out], { encoding: 'utf8', timeout: 30_000 });
      expect(result.status, `${args.join(' ')}: ${result.stderr}`).toBe(2);
      expect(result.stderr).toContain(args[0]!.slice(2));
    }
    expect(existsSync(out)).toBe(false);
  }, 60_000);

  it('keeps quantile tables in order after rounding', () => {
    const table = quantileTable([5, 1, 3, 2, 4]);
    expect(table[0]).toBe(1);
    expect(table.at(-1)).toBe(5);
    expect(table[QUANTILES.indexOf(0.5)]).toBe(3);
    for (let i = 1; i < table.length; i++) expect(table[i]).toBeGreaterThanOrEqual(table[i - 1]!);
  });
});
