// Goal: one way to run a fast-check property in this project, so that every suite scales the same way between
// `npm test` (quick) and `npm run properties:deep` (long), and every failure prints how to replay it.
// Method: `runProperty` calls `fc.check` with numRuns scaled from the environment and, when FC_SEED / FC_PATH
// (and FC_REPLAY_PATH for `fc.commands`) are set, with those, so the exact counterexample comes back. A failure
// throws an error whose first lines are the seed, the path and one command that replays it, followed by
// fast-check's own report (counterexample, shrink count, the error the property threw).
//
// Environment:
//   FC_SEED, FC_PATH    replay a failure (printed by every failure)
//   FC_REPLAY_PATH      replay hint of `fc.commands` (printed when the counterexample has one)
//   FC_NUM_RUNS         numRuns for every property (overrides the per-property quick figure)
//   FC_RUNS_FACTOR      multiplies every property's quick numRuns (properties:deep uses it)

import fc from 'fast-check';
import { relative } from 'node:path';
import { expect } from 'vitest';

function envNumber(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value)) throw new Error(`${name} must be a number, got ${JSON.stringify(raw)}`);
  return value;
}

/** The seed of a replay, when FC_SEED is set. */
export function replaySeed(): number | undefined {
  return envNumber('FC_SEED');
}

/** The numRuns for a property whose quick figure is `quick`. */
export function numRunsFor(quick: number): number {
  const absolute = envNumber('FC_NUM_RUNS');
  if (absolute !== undefined) return Math.max(1, Math.round(absolute));
  const factor = envNumber('FC_RUNS_FACTOR') ?? 1;
  return Math.max(1, Math.round(quick * factor));
}

/**
 * Constraints for `fc.commands`: up to `maxCommands` commands, most runs long ('medium' size: the default 'small'
 * makes runs of a handful of commands), plus the replay hint when a failure is being replayed.
 */
export function commandsConstraints(maxCommands: number): fc.CommandsContraints {
  const replayPath = process.env.FC_REPLAY_PATH;
  return { maxCommands, size: 'medium', ...(replayPath ? { replayPath } : {}) };
}

export interface RunOptions<Ts = unknown> {
  /** numRuns under `npm test`; scaled by FC_RUNS_FACTOR or replaced by FC_NUM_RUNS. */
  numRuns: number;
  /**
   * Wall-time budget for the whole property, generation and shrinking, scaled like numRuns. For properties whose
   * every run is slow (whole simulations): a failure found in time is still reported, shrunk as far as the budget
   * allowed, with a path that replays it. Runs not started in time are skipped, so keep it well above
   * numRuns × the time of one run.
   */
  timeLimitMs?: number;
  /** Called once with the final (shrunk) counterexample; its lines join the failure message. */
  onFailure?: (counterexample: Ts) => string;
}

function currentTest(): { file: string; name: string } {
  const state = expect.getState();
  const file = state.testPath ? relative(process.cwd(), state.testPath) : 'properties';
  return { file, name: state.currentTestName ?? '' };
}

/** The shell line that replays a failure of the current test. */
export function replayCommand(seed: number, path: string | null, replayPath?: string): string {
  const { file, name } = currentTest();
  // vitest's -t takes a regular expression; the test name is matched literally.
  const pattern = name.split(' > ').at(-1)?.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') ?? '';
  const env = [`FC_SEED=${seed}`, path ? `FC_PATH=${path}` : '', replayPath ? `FC_REPLAY_PATH=${replayPath}` : ''].filter(Boolean).join(' ');
  return `${env} npx vitest run ${file} -t '${pattern.replace(/'/g, `'\\''`)}'`;
}

function parameters<Ts>(options: RunOptions<Ts>): fc.Parameters<Ts> {
  const seed = replaySeed();
  const path = process.env.FC_PATH;
  const numRuns = numRunsFor(options.numRuns);
  const timeLimitMs = options.timeLimitMs === undefined ? undefined : Math.round(options.timeLimitMs * Math.max(1, numRuns / options.numRuns));
  return {
    numRuns,
    ...(seed !== undefined ? { seed } : {}),
    ...(path ? { path } : {}),
    // The time limit reads the wall clock: harness code, never domain code.
    ...(timeLimitMs !== undefined ? { plugins: [fc.interruptAfterTimeLimit(timeLimitMs) as fc.Plugin<Ts>] } : {}),
  };
}

function failureMessage<Ts>(out: fc.RunDetails<Ts>, options: RunOptions<Ts>): string {
  const report = fc.defaultReportMessage(out) ?? 'the property failed';
  const replayPath = /replayPath="([^"]*)"/.exec(fc.stringify(out.counterexample))?.[1];
  const error = out.errorInstance instanceof Error ? out.errorInstance.message : out.errorInstance === null || out.errorInstance === undefined ? '' : String(out.errorInstance);
  return [
    `property failed — seed ${out.seed}, path ${out.counterexamplePath ?? '(none)'}${out.interrupted ? ' (shrinking cut short by the time limit)' : ''}`,
    `replay: ${replayCommand(out.seed, out.counterexamplePath, replayPath)}`,
    ...(options.onFailure && out.counterexample !== null ? [options.onFailure(out.counterexample)] : []),
    ...(error ? ['', `error: ${error}`] : []),
    '',
    report,
  ].join('\n');
}

/** Runs a synchronous property; throws with the replay command on failure. */
export function runProperty<Ts>(property: fc.IProperty<Ts>, options: RunOptions<Ts>): void {
  const out = fc.check(property, parameters<Ts>(options));
  if (out.failed) throw new PropertyFailure(failureMessage(out, options), out.errorInstance);
}

/** Runs an asynchronous property (model runs with a scheduler); throws with the replay command on failure. */
export async function runAsyncProperty<Ts>(property: fc.IAsyncProperty<Ts>, options: RunOptions<Ts>): Promise<void> {
  const out = await fc.check(property, parameters<Ts>(options));
  if (out.failed) throw new PropertyFailure(failureMessage(out, options), out.errorInstance);
}

export class PropertyFailure extends Error {
  constructor(message: string, readonly errorInstance: unknown) {
    super(message);
    this.name = 'PropertyFailure';
  }
}
