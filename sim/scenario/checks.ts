// Goal: the rules of a scenario that involve more than one field (shares that sum to 1, a fault on a shard
// that exists, an outage in a region that exists, events before the end of the run…).
// Method: checks run on the resolved scenario, after every default is applied, so they see what the run will
// see; each problem names the field in the file's own terms (`at`, not `atMs`) so the loader can find its line.
// `withOverrides` runs them again after the command line changed the scenario.

import { formatDuration } from './durations.ts';
import type { FieldPath } from './problems.ts';
import type { Scenario } from './types.ts';
import { didYouMean } from './validate.ts';
import { thresholdProblem } from './thresholds.ts';

export type CheckReport = (path: FieldPath, message: string) => void;

/** Regions' shares must sum to 1 within this tolerance (they are fractions written in decimal). */
export const SHARE_SUM_TOLERANCE = 1e-9;

/** Faults whose `count` is a number of terminals, so at most population.terminals. */
const TERMINAL_COUNT_FAULTS = new Set(['terminalCrash', 'simMove', 'clockSkew']);

export function checkScenario(s: Scenario, report: CheckReport): void {
  const { population } = s;
  const regions = ['population', 'regions'];

  uniqueNames(population.regions, regions, report);
  const shareSum = population.regions.reduce((sum, region) => sum + region.share, 0);
  if (Math.abs(shareSum - 1) > SHARE_SUM_TOLERANCE) {
    report(regions, `expected the shares of the regions to sum to 1, got ${shareSum}`);
  }

  uniqueNames(population.means, ['population', 'means'], report);
  population.means.forEach((means, i) => {
    const at = ['population', 'means', i];
    if (means.kind !== 'postpaid' && means.creditLimitMinor > 0) {
      report([...at, 'creditLimitMinor'], `expected 0 for a ${means.kind} means (only a postpaid means has a credit limit), got ${means.creditLimitMinor}`);
    }
    if (means.elsewhere !== null && means.dedicated) {
      report([...at, 'elsewhere'], 'expected no spending elsewhere on a dedicated means; set dedicated: false to share it');
    }
    // A top-up of nothing moves no money and would only cost the server its work.
    const topUpAmount = means.topUp?.amount;
    if (topUpAmount && (topUpAmount.kind === 'fixed' ? topUpAmount.amountMinor : topUpAmount.kind === 'uniform' ? topUpAmount.minMinor : 1) < 1) {
      report([...at, 'topUp', 'amount'], 'expected a top-up of at least 1 minor unit');
    }
    if (means.sharedBy > 1 && means.dedicated) {
      report([...at, 'sharedBy'], `expected dedicated: false for a means shared by ${means.sharedBy} terminals`);
    }
  });

  uniqueNames(population.apps, ['population', 'apps'], report);

  const { pos } = population;
  if (pos.units > 0 && (pos.merchants < 1 || pos.merchants > pos.units)) {
    report(['population', 'pos', 'merchants'], `expected an integer from 1 to pos.units (${pos.units}), got ${pos.merchants}`);
  }
  if (pos.units === 0 && pos.merchants > 0) {
    report(['population', 'pos', 'merchants'], `expected 0 merchants when there are no POS units, got ${pos.merchants}`);
  }

  const { retry } = s.policy.remittance;
  if (retry.maxMs < retry.initialMs) {
    report(['policy', 'remittance', 'retry', 'max'], `expected at least initial (${formatDuration(retry.initialMs)}), got ${formatDuration(retry.maxMs)}`);
  }

  const { latency } = s.network;
  if (latency.p99Ms < latency.medianMs) {
    report(['network', 'latency', 'p99Ms'], `expected at least the median (${latency.medianMs} ms), got ${latency.p99Ms} ms`);
  }

  const regionNames = population.regions.map((region) => region.name);
  s.coverage.outages.forEach((outage, i) => {
    const at = ['coverage', 'outages', i];
    if (!regionNames.includes(outage.region)) {
      report([...at, 'region'], `expected one of the regions ${regionNames.map((n) => JSON.stringify(n)).join(', ')}, got ${JSON.stringify(outage.region)}${didYouMean(outage.region, regionNames)}`);
    }
    beforeEnd(s, outage.atMs, [...at, 'at'], report);
  });

  s.faults.forEach((fault, i) => {
    const at = ['faults', i];
    beforeEnd(s, fault.atMs, [...at, 'at'], report);
    if ('shard' in fault && fault.shard >= population.shards) {
      report([...at, 'shard'], `expected a shard index below population.shards (${population.shards}), got ${fault.shard}`);
    }
    if ('count' in fault && TERMINAL_COUNT_FAULTS.has(fault.kind) && fault.count > population.terminals) {
      report([...at, 'count'], `expected at most population.terminals (${population.terminals}) terminals, got ${fault.count}`);
    }
  });

  checkArrival(s, report);
  s.thresholds.forEach((expression, i) => {
    const problem = thresholdProblem(expression);
    if (problem) report(['thresholds', i], problem);
  });
}

/** The arrivals fall inside the safety phase and draw from sources that exist. */
function checkArrival(s: Scenario, report: CheckReport): void {
  const arrival = s.arrival;
  if (!arrival) return;
  const at = ['arrival'];
  if (arrival.startTimeMs >= s.durationMs) {
    report([...at, 'startTime'], `expected a time before the duration (${formatDuration(s.durationMs)}), got ${formatDuration(arrival.startTimeMs)}`);
  }
  let lengthMs: number | null = null;
  let lengthField = 'duration';
  if (arrival.executor === 'constant-arrival-rate') {
    lengthMs = arrival.durationMs;
  } else {
    lengthField = 'stages';
    if (arrival.stages.length === 0) report([...at, 'stages'], 'expected at least one stage');
    lengthMs = arrival.stages.reduce((sum, stage) => sum + stage.durationMs, 0);
  }
  if (lengthMs !== null && arrival.startTimeMs + lengthMs > s.durationMs) {
    report([...at, lengthField], `expected the arrivals to end by the duration (${formatDuration(s.durationMs)}), got startTime + ${lengthField} = ${formatDuration(arrival.startTimeMs + lengthMs)}`);
  }
  const apps = s.population.apps.map((app) => app.name);
  const seen = new Set<string>();
  arrival.mix.forEach((entry, i) => {
    const path = [...at, 'mix', i, 'source'];
    if (seen.has(entry.source)) report(path, `expected a source named once, got ${JSON.stringify(entry.source)} a second time`);
    seen.add(entry.source);
    if (entry.source === 'pos') {
      if (s.population.pos.units === 0) report(path, 'expected POS units (population.pos.units > 0) for the source "pos"');
    } else if (!apps.includes(entry.source)) {
      report(path, `expected "pos" or one of the apps ${apps.map((n) => JSON.stringify(n)).join(', ')}, got ${JSON.stringify(entry.source)}${didYouMean(entry.source, [...apps, 'pos'])}`);
    }
  });
}

function beforeEnd(s: Scenario, atMs: number, path: FieldPath, report: CheckReport): void {
  if (atMs >= s.durationMs) {
    report(path, `expected a time before the duration (${formatDuration(s.durationMs)}), got ${formatDuration(atMs)}`);
  }
}

function uniqueNames(items: readonly { name: string }[], path: FieldPath, report: CheckReport): void {
  const seen = new Set<string>();
  items.forEach((item, i) => {
    if (seen.has(item.name)) report([...path, i, 'name'], `expected a unique name, got ${JSON.stringify(item.name)} a second time`);
    seen.add(item.name);
  });
}
