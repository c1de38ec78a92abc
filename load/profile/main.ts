// Goal: `npm run profile -- <scenario> [--tool doctor,flame] [--dest DIR] [run flags…]` — where a virtual run
// spends its time: clinic doctor (event-loop delay, GC, handles) and clinic flame (a flame graph), as HTML.
// Method: each tool runs `payfleet run <scenario> --quiet` under clinic (NO_INSIGHT=1, --open=false, --dest),
// and the HTML path clinic prints is reported. When clinic cannot run (not installed, or it breaks on this
// machine) the fallback is Node's own `--cpu-prof`; `--tool cpu-prof` asks for it directly. Either way a
// V8 CPU profile is also summarised here as its top functions by self time, so the answer shows in the terminal.
// The flags of `payfleet run` (--terminals, --duration, --seed, --mode…) go to the run unchanged; every flag is
// checked first with the CLI's one parser (sim/cli/args.ts), so a typo is exit status 2 before anything runs.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { topSelfTime, type CpuProfile } from './cpuProfile.ts';
import { defineFlags, formatHelp, parseArgs, tokenize, UsageError } from '../../sim/cli/args.ts';
import { runFlags } from '../../sim/cli/commands/run.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'bin/payfleet.mjs');
const CLINIC = join(ROOT, 'node_modules/.bin/clinic');
const TOOLS = ['doctor', 'flame', 'cpu-prof'] as const;
type Tool = (typeof TOOLS)[number];

interface Options {
  scenario: string;
  tools: Tool[];
  dest: string;
  runArgs: string[];
}

const PROFILE_FLAGS = defineFlags({
  tool: { kind: 'string', placeholder: 'doctor,flame|cpu-prof', help: 'the profilers to run, comma-separated', defaultText: 'doctor,flame' },
  dest: { kind: 'string', placeholder: 'DIR', help: 'where the profiles and runs go', defaultText: 'runs/profile-<scenario>' },
  help: { kind: 'boolean', short: 'h', help: 'show this help' },
});
/** This script's flags and `payfleet run`'s, which are passed on to the run unchanged. */
const ALL_FLAGS = { ...runFlags, ...PROFILE_FLAGS };
const USAGE = 'npm run profile -- <scenario.yaml> [--tool doctor,flame|cpu-prof] [--dest DIR] [payfleet run flags]';

/** Options from argv; undefined for --help. Every flag, this script's or the run's, is checked here (exit 2 naming it). */
function parse(argv: string[]): Options | undefined {
  const { positionals, flags } = parseArgs(argv, ALL_FLAGS);
  if (flags.help) return undefined;
  if (positionals.length !== 1) throw new UsageError(`expected one scenario file, got ${positionals.length}`);
  const scenario = positionals[0]!;
  const names = (flags.tool ?? 'doctor,flame').split(',');
  const unknown = names.filter((n) => !(TOOLS as readonly string[]).includes(n));
  if (unknown.length > 0) throw new UsageError(`--tool: expected ${TOOLS.join(', ')}, got ${unknown.join(', ')}`, 'tool');
  // The run's flags go on as they were written (a duration stays "30m"), in their order.
  const runArgs = tokenize(argv, ALL_FLAGS).flatMap((t) => (t.kind === 'flag' && t.name in runFlags ? t.tokens : []));
  const name = basename(scenario, extname(scenario));
  return { scenario, tools: names as Tool[], dest: resolve(flags.dest ?? join('runs', `profile-${name}`)), runArgs };
}

function runCommand(o: Options, tool: string): string[] {
  return [BIN, 'run', o.scenario, '--quiet', '--out', join(o.dest, `run-${tool}`), ...o.runArgs];
}

/** Runs one clinic tool; returns the HTML it wrote, or why it could not. */
function clinic(o: Options, tool: 'doctor' | 'flame'): { html?: string; problem?: string } {
  if (!existsSync(CLINIC)) return { problem: 'clinic is not installed (npm i -D clinic)' };
  const result = spawnSync(CLINIC, [tool, '--open=false', '--dest', join(o.dest, '.clinic'), '--', process.execPath, ...runCommand(o, tool)], {
    cwd: ROOT,
    env: { ...process.env, NO_INSIGHT: '1' },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`;
  const html = /Generated HTML file is (?:file:\/\/)?(\S+\.html)/.exec(output)?.[1];
  if (result.status === 0 && html && existsSync(html)) return { html };
  return { problem: `clinic ${tool} failed (exit ${result.status ?? result.signal}): ${output.trim().split('\n').slice(-5).join(' | ')}` };
}

/** Node's own sampling profiler; returns the .cpuprofile written. */
function cpuProf(o: Options): { file?: string; problem?: string } {
  const dir = join(o.dest, 'cpuprofile');
  mkdirSync(dir, { recursive: true });
  const before = new Set(readdirSync(dir));
  const result = spawnSync(process.execPath, ['--cpu-prof', '--cpu-prof-dir', dir, ...runCommand(o, 'cpu-prof')], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const written = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile') && !before.has(f));
  // A run that found a violation (exit 1) or failed a threshold (99) was still profiled.
  if (written.length === 0) return { problem: `node --cpu-prof wrote no profile (exit ${result.status}): ${(result.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}` };
  // The largest profile is the run's (tsx's loader thread writes a small one too).
  const largest = written.map((f) => join(dir, f)).sort((a, b) => readFileSync(b).length - readFileSync(a).length)[0]!;
  return { file: largest };
}

function printTop(file: string): void {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  console.log(`  top functions by self time (${file}):`);
  for (const row of topSelfTime(profile, 15, ROOT)) console.log(`    ${row.percent.toFixed(1).padStart(5)}%  ${row.selfMs.toFixed(0).padStart(6)} ms  ${row.name}  ${row.where}`);
}

function main(argv: string[]): number {
  let parsed: Options | undefined;
  try {
    parsed = parse(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`profile: ${error.message}`);
    return 2;
  }
  if (!parsed) {
    console.log(formatHelp(USAGE, 'Where a virtual run spends its time: clinic doctor and flame, or node --cpu-prof; the flags of payfleet run go to the run.', ALL_FLAGS));
    return 0;
  }
  const o = parsed;
  mkdirSync(o.dest, { recursive: true });
  console.log(`profile ${o.scenario}: tools ${o.tools.join(', ')}, output under ${o.dest}`);
  let fellBack = false;
  for (const tool of o.tools) {
    if (tool === 'cpu-prof') continue;
    const { html, problem } = clinic(o, tool);
    if (html) console.log(`  clinic ${tool}: ${html}`);
    else {
      console.log(`  ${problem}`);
      fellBack = true;
    }
  }
  if (o.tools.includes('cpu-prof') || fellBack) {
    if (fellBack) console.log('  falling back to node --cpu-prof');
    const { file, problem } = cpuProf(o);
    if (!file) {
      console.error(`  ${problem}`);
      return 1;
    }
    console.log(`  cpu profile: ${file} (open it in Chrome DevTools › Performance, or speedscope)`);
    printTop(file);
  }
  return 0;
}

process.exitCode = main(process.argv.slice(2));
