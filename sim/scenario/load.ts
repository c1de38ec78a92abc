// Goal: turn a scenario file into a resolved `Scenario`, or refuse it, before anything runs, with every problem
// named by file, line, column and field.
// Method: four passes, each collecting problems: YAML syntax (the `yaml` package with a LineCounter), the
// fields against the spec (`validate.ts`), the defaults that depend on other fields, then the cross-field rules
// (`checks.ts`). Any problem ends in one ScenarioError. Command-line overrides go through the same spec and
// the same cross-field rules (`withOverrides`).

import { readFileSync } from 'node:fs';
import { basename, dirname, extname, resolve } from 'node:path';
import { CalibrationError, findCalibrationFile, readCalibration } from './calibration.ts';
import { LineCounter, parseDocument } from 'yaml';
import { checkScenario } from './checks.ts';
import { formatPath, ScenarioError, type FieldPath, type ScenarioProblem } from './problems.ts';
import { scenarioSpec, type Fields, type Spec } from './spec.ts';
import { fromYaml, locate, type Pos, type Scalar, type TreeNode } from './tree.ts';
import type { MeansProfile, Scenario } from './types.ts';
import { INVALID, resolveValue } from './validate.ts';

export { ScenarioError, formatProblem, type ScenarioProblem } from './problems.ts';

/** Reads and resolves the scenario file at `filePath`; throws ScenarioError when it is unreadable or invalid. */
export function loadScenario(filePath: string): Scenario {
  let text: string;
  try {
    text = readFileSync(filePath, 'utf8');
  } catch (error) {
    const reason = error instanceof Error && 'code' in error ? String(error.code) : String(error);
    throw new ScenarioError([{ file: filePath, path: '', message: `cannot read the scenario file (${reason})` }]);
  }
  return loadScenarioText(text, filePath);
}

/** Resolves scenario text; `fileName` names it in problems and gives the default scenario name. */
export function loadScenarioText(text: string, fileName: string): Scenario {
  const problems: ScenarioProblem[] = [];
  const add = (pos: Pos | undefined, path: FieldPath, message: string): void => {
    problems.push({ file: fileName, ...(pos ? { line: pos.line, column: pos.column } : {}), path: formatPath(path), message });
  };

  const lineCounter = new LineCounter();
  // prettyErrors adds each error's line and column (linePos); its message text is trimmed below.
  const doc = parseDocument(text, { lineCounter, prettyErrors: true });
  if (doc.errors.length > 0) {
    for (const error of doc.errors) {
      const linePos = error.linePos?.[0];
      add(linePos ? { line: linePos.line, column: linePos.col } : undefined, [], `YAML syntax error: ${error.message.replace(/ at line \d+, column \d+[\s\S]*$/, '')}`);
    }
    throw new ScenarioError(sortProblems(problems));
  }

  let tree: TreeNode | undefined;
  try {
    tree = fromYaml(doc, lineCounter);
  } catch (error) {
    add(undefined, [], `cannot read the document: ${error instanceof Error ? error.message : String(error)}`);
    throw new ScenarioError(problems);
  }
  if (tree !== undefined && tree.kind !== 'map') {
    add(tree.pos, [], 'expected a mapping of scenario fields at the top level');
    throw new ScenarioError(problems);
  }

  const raw = resolveValue(scenarioSpec, tree, [], add);
  // Cross-field rules need every field valid, so they wait until the fields are right.
  if (problems.length > 0 || raw === INVALID) throw new ScenarioError(sortProblems(problems));

  const scenario = applyComputedDefaults(raw as Record<string, unknown>, defaultName(fileName));
  checkScenario(scenario, (path, message) => add(locate(tree, path), path, message));
  attachCalibration(scenario, fileName, (path, message) => add(locate(tree, path), path, message));
  if (problems.length > 0) throw new ScenarioError(sortProblems(problems));
  return scenario;
}

/**
 * Replaces `servers.calibration` (the file name as written) by the file's checked contents; a file that is missing,
 * unreadable, malformed or measured with another crypto than the scenario's is a problem on that line.
 */
function attachCalibration(scenario: Scenario, fileName: string, report: (path: FieldPath, message: string) => void): void {
  const reference = scenario.servers.calibration as unknown as string | undefined;
  if (reference === undefined) return;
  const at = ['servers', 'calibration'];
  const file = findCalibrationFile(reference, fileName);
  if (file === undefined) {
    report(at, `calibration file "${reference}" not found (looked in ${dirname(resolve(fileName))}, the folders above it and the current directory); write one with \`payfleet calibrate --out ${reference}\``);
    delete scenario.servers.calibration;
    return;
  }
  try {
    const calibration = readCalibration(file);
    if (calibration.crypto !== scenario.crypto) {
      report(at, `calibration "${reference}" was measured with crypto ${calibration.crypto}, the scenario uses ${scenario.crypto}; calibrate with \`payfleet calibrate --crypto ${scenario.crypto}\``);
    }
    scenario.servers.calibration = { file: reference, calibration };
  } catch (error) {
    if (!(error instanceof CalibrationError)) throw error;
    report(at, `calibration: ${error.message}`);
    delete scenario.servers.calibration;
  }
}

/** In the order of the file, which is the order a person fixes them in; problems without a place first. */
function sortProblems(problems: ScenarioProblem[]): ScenarioProblem[] {
  return problems
    .map((problem, index) => ({ problem, index }))
    .sort((a, b) => (a.problem.line ?? 0) - (b.problem.line ?? 0) || (a.problem.column ?? 0) - (b.problem.column ?? 0) || a.index - b.index)
    .map(({ problem }) => problem);
}

function defaultName(fileName: string): string {
  const base = basename(fileName);
  return base.slice(0, base.length - extname(base).length) || 'scenario';
}

/**
 * Fills the defaults that depend on other fields; the validated values are otherwise complete. Each rule
 * here is documented on its field in spec.ts (`defaultDoc`).
 */
function applyComputedDefaults(raw: Record<string, unknown>, name: string): Scenario {
  // The walk above produced exactly the resolved shape, less the fields handled here.
  const s = raw as unknown as Scenario;
  s.name ??= name;

  const regions = s.population.regions;
  const given = regions.filter((r) => r.share !== undefined);
  const missing = regions.length - given.length;
  if (missing > 0) {
    const rest = 1 - given.reduce((sum, r) => sum + r.share, 0);
    for (const region of regions) region.share ??= Math.max(0, rest / missing);
  }

  s.population.means.forEach((means: MeansProfile, i) => {
    means.name ??= `means-${i + 1}`;
    const postpaid = means.kind === 'postpaid';
    means.openingBalanceMinor ??= postpaid ? 0 : 10_000;
    means.creditLimitMinor ??= postpaid ? 50_000 : 0;
    means.localBalanceMinor ??= means.openingBalanceMinor + means.creditLimitMinor;
    means.wallet ??= means.kind === 'electronicWallet';
    if (means.localValue) means.localValue.reloadBelowMinor ??= Math.floor(means.localValue.amountMinor / 2);
  });

  s.population.apps.forEach((app, i) => {
    app.name ??= `app-${i + 1}`;
    app.payee ??= app.name;
  });

  s.population.pos.merchants ??= s.population.pos.units;
  return s;
}

/** Values from the command line: numbers, or the strings the user typed. */
export interface ScenarioOverrides {
  seed?: number | string;
  terminals?: number | string;
  duration?: number | string;
}

const OVERRIDE_FIELDS: Record<keyof ScenarioOverrides, { flag: string; path: string[] }> = {
  seed: { flag: '--seed', path: ['seed'] },
  terminals: { flag: '--terminals', path: ['population', 'terminals'] },
  duration: { flag: '--duration', path: ['duration'] },
};

const COMMAND_LINE = '<command line>';

/**
 * Returns a copy of `scenario` with the command line's values, validated like the file's (same limits, and the
 * cross-field rules again: a shorter --duration may leave a fault after the end). Throws ScenarioError.
 */
export function withOverrides(scenario: Scenario, overrides: ScenarioOverrides): Scenario {
  const problems: ScenarioProblem[] = [];
  const next: Scenario = structuredClone(scenario);

  for (const key of Object.keys(OVERRIDE_FIELDS) as (keyof ScenarioOverrides)[]) {
    const value = overrides[key];
    if (value === undefined) continue;
    const { flag, path } = OVERRIDE_FIELDS[key];
    const node: TreeNode = { kind: 'scalar', value: commandLineScalar(value), source: String(value) };
    const resolved = resolveValue(specAt(path), node, [], (_pos, _path, message) => {
      problems.push({ file: COMMAND_LINE, path: flag, message });
    });
    if (resolved === INVALID || resolved === undefined) continue;
    if (key === 'seed') next.seed = resolved as number;
    else if (key === 'terminals') next.population.terminals = resolved as number;
    else next.durationMs = resolved as number;
  }
  if (problems.length > 0) throw new ScenarioError(problems);

  checkScenario(next, (path, message) => {
    problems.push({ file: next.name, path: formatPath(path), message: `${message} (after the command-line overrides)` });
  });
  if (problems.length > 0) throw new ScenarioError(problems);
  return next;
}

/** Command-line text that is a plain integer is a number (a seed, a count, or a duration in ms). */
function commandLineScalar(value: number | string): Scalar {
  if (typeof value === 'number') return value;
  const trimmed = value.trim();
  return /^-?[0-9]+$/.test(trimmed) ? Number(trimmed) : trimmed;
}

function specAt(path: readonly string[]): Spec {
  let spec: Spec = scenarioSpec;
  for (const name of path) {
    const fields: Fields | undefined = spec.type === 'object' ? spec.fields : undefined;
    const child = fields?.[name];
    if (!child) throw new Error(`specAt: no field ${path.join('.')} in the scenario spec`);
    spec = child;
  }
  return spec;
}
