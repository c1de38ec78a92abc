// Goal: `npm run profile -- <scenario> [--tool doctor,flame] [--dest DIR] [run flags…]` — where a virtual run
// spends its time: clinic doctor (event-loop delay, GC, handles) and clinic flame (a flame graph), as HTML.
// Method: each tool runs `payfleet run <scenario> --quiet` under clinic (NO_INSIGHT=1, --open=false, --dest),
// and the HTML path clinic prints is reported. When clinic cannot run (not installed, or it fails on this
// machine) the fallback is Node's own `--cpu-prof`; `--tool cpu-prof` asks for it directly. Either way a
// V8 CPU profile is also summarised here as its top functions by self time, so the answer shows in the terminal.
// Flags this script does not know (--terminals, --duration, --seed, --mode…) go to `payfleet run` unchanged.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { topSelfTime, type CpuProfile } from './cpuProfile.ts';

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

function parse(argv: string[]): Options {
  let scenario: string | undefined;
  let tools: Tool[] = ['doctor', 'flame'];
  let dest: string | undefined;
  const runArgs: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => {
      const next = argv[++i];
      if (next === undefined) throw new Error(`${arg}: expected a value`);
      return next;
    };
    if (arg === '--tool') {
      const names = value().split(',');
      const unknown = names.filter((n) => !(TOOLS as readonly string[]).includes(n));
      if (unknown.length > 0) throw new Error(`--tool: expected ${TOOLS.join(', ')}, got ${unknown.join(', ')}`);
      tools = names as Tool[];
    } else if (arg === '--dest') dest = value();
    else if (arg.startsWith('--')) {
      runArgs.push(arg);
      if (argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('--') && !['--quiet'].includes(arg)) runArgs.push(argv[++i]!);
    } else if (scenario === undefined) scenario = arg;
    else throw new Error(`unexpected argument ${arg}`);
  }
  if (!scenario) throw new Error('usage: npm run profile -- <scenario.yaml> [--tool doctor,flame|cpu-prof] [--dest DIR] [payfleet run flags]');
  const name = basename(scenario, extname(scenario));
  return { scenario, tools, dest: resolve(dest ?? join('runs', `profile-${name}`)), runArgs };
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
  let o: Options;
  try {
    o = parse(argv);
  } catch (error) {
    console.error(`profile: ${(error as Error).message}`);
    return 2;
  }
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
