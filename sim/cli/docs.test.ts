// Goal: every command line the README and docs/*.md tell a user to type works, so the docs cannot drift from the
// code; and every file path they name exists.
// Method: extract the commands from the Markdown itself: each line of a ```sh block (comments stripped, `a && b`
// split in two) and each inline code span that starts with `npx`, `npm` or `NAME=value npx|npm`. Run each one in
// document order through bash, as a user would in a fresh shell at the repository root: the cwd is a mirror of the
// repository (every top-level entry linked, docs/ copied, no runs/), so the files the commands write never land in
// the checkout; `payfleet` is on PATH as npm links it, and `npx payfleet` runs through that link (see withoutNpx;
// bin.test.ts runs npx and npm exec themselves). A command runs as written unless the SPECIAL table below says
// how it is run instead and why (shrunk, or its flags checked by parsing only). A command in the docs that is
// neither runnable as written (it holds a placeholder) nor in the table fails the test, and so does a table entry
// that is no longer in the docs. Lines ending in `&` run in the background until the last command, as in a shell;
// `export NAME=value` lines set NAME for the commands after them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { freePort } from '../../broker/mosquitto.ts';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { startPostgresTestCluster, type PostgresTestCluster } from '../sd/postgresTestCluster.ts';

const REPO_ROOT = resolve(import.meta.dirname, '../..');
const DOC_FILES = ['README.md', ...readdirSync(join(REPO_ROOT, 'docs')).filter((name) => name.endsWith('.md')).sort().map((name) => `docs/${name}`)];
const SHELL_FENCES = new Set(['sh', 'bash', 'shell', 'console']);
const INLINE_COMMAND = /^(?:[A-Z_][A-Z0-9_]*=\S+\s+)*(?:npx|npm)\s/;
const PLACEHOLDER = /…|<[a-z][\w-]*>/;

interface DocCommand {
  readonly text: string;
  /** Where the docs give it, `file:line` (the first place when it appears more than once). */
  readonly where: string;
}

/** The command lines of one Markdown document, in order. */
export function commandsOf(markdown: string, file: string): DocCommand[] {
  const commands: DocCommand[] = [];
  const lines = markdown.split('\n');
  let fence: string | undefined;
  let pending = '';
  lines.forEach((line, index) => {
    const where = `${file}:${index + 1}`;
    const opening = /^\s*```(\w*)/.exec(line);
    if (opening) {
      fence = fence === undefined ? opening[1] : undefined;
      return;
    }
    if (fence !== undefined) {
      if (!SHELL_FENCES.has(fence)) return;
      const code = (pending + line.replace(/(^|\s)#\s.*$/, '').replace(/^\s*#.*$/, '')).trim();
      if (code.endsWith('\\')) {
        pending = `${code.slice(0, -1)} `;
        return;
      }
      pending = '';
      for (const part of code.split(' && ')) if (part.trim()) commands.push({ text: part.trim(), where });
      return;
    }
    for (const [, span = ''] of line.matchAll(/`([^`]+)`/g)) {
      if (INLINE_COMMAND.test(span)) commands.push({ text: span.trim(), where });
    }
  });
  return commands;
}

function allDocCommands(): DocCommand[] {
  const seen = new Map<string, DocCommand>();
  for (const file of DOC_FILES) {
    for (const command of commandsOf(readFileSync(join(REPO_ROOT, file), 'utf8'), file)) {
      if (!seen.has(command.text)) seen.set(command.text, command);
    }
  }
  return [...seen.values()];
}

const MANIFEST = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
const QUICKSTART_MQTT = 'run scenarios/quickstart.yaml --mode mqtt --time-scale 60';
/** An mqtt quickstart that keeps every process (broker, two servers, a swarm worker), the outage and the verdict,
 * but plays 11 simulated minutes (the outage starts at 10m) at 120× with 30 terminals. Not faster: at 600× the
 * 15-minute drain is 1.5 s of real time, and on a busy machine the backlog did not drain in it (INV-7). */
const MQTT_SHRUNK = '--terminals 30 --duration 11m --time-scale 120 --quiet';

interface Special {
  /** What the test runs instead (through bash, like the rest), or undefined when it only checks by parsing. */
  readonly run?: string;
  /** Checks made instead of, or besides, running. */
  readonly check?: () => void;
  readonly exitStatus?: number;
  /** What its output must show, when the exit status alone would not tell. */
  readonly output?: RegExp;
  readonly why: string;
}

/** The README's run over three hosts (10.0.0.1-3) by hand: not runnable on one machine as written. */
const THREE_HOSTS = 'one of the three hosts of the README on many machines (10.0.0.1-3), not this one; sim/cli/deploy.test.ts parses every payfleet line of that block with the CLI, and sim/mqtt/agents.test.ts runs a coordinator and two agents for real (in network namespaces as root)';

/** Every documented command that is not run exactly as written, how it is covered, and why. */
const SPECIAL: Record<string, Special> = {
  "redis-server --bind 10.0.0.1 --port 6379 --save '' --appendonly no --protected-mode no &": { why: THREE_HOSTS },
  'npx payfleet broker --host 10.0.0.1 --port 1883 --cluster redis://10.0.0.1:6379 &': { why: THREE_HOSTS },
  'npx payfleet broker --host 10.0.0.2 --port 1883 --cluster redis://10.0.0.1:6379 &': { why: THREE_HOSTS },
  'npx payfleet run scenarios/quickstart.yaml --mode mqtt --time-scale 60 --agents 2 --listen 10.0.0.1:7400 --broker mqtt://10.0.0.1:1883': { why: THREE_HOSTS },
  'npx payfleet agent --coordinator ws://10.0.0.1:7400 --name host-b': { why: THREE_HOSTS },
  'npx payfleet agent --coordinator ws://10.0.0.1:7400 --name host-c': { why: THREE_HOSTS },
  'npx payfleet': {
    run: 'npx payfleet',
    exitStatus: 2,
    output: /usage: payfleet <command>/,
    why: 'the README names the command this way; without a command it prints the usage and exits 2 (bad input), and that is what is checked',
  },
  'npm ci': {
    run: 'npm ls --depth=0',
    why: 'npm ci deletes node_modules and installs it again from the registry (minutes, network), under the running test; npm ls checks that the installed tree satisfies package.json and the lock, which is what npm ci guarantees',
  },
  'npm start': {
    run: `npm start -- ${MQTT_SHRUNK} --out runs/npm-start`,
    why: 'the quickstart in mqtt mode plays 30 simulated minutes at 60× plus the drain (about a minute of wall time); shrunk, the same script starts the same processes and must end with the verdict OK',
  },
  'npm test': {
    check: () => {
      expect(MANIFEST.scripts.test).toBe('tsc -p tsconfig.json --noEmit && vitest run');
      expect(readFileSync(join(REPO_ROOT, 'vitest.config.ts'), 'utf8')).toContain("'{machines,broker,sim,load,properties}/**/*.test.ts'");
    },
    why: 'it is the suite this test is part of (3-5 minutes); run from here it would run itself. Checked: the script is tsc then vitest, and vitest includes sim/**/*.test.ts (this file)',
  },
  [`npx payfleet ${QUICKSTART_MQTT}`]: {
    run: `npx payfleet ${QUICKSTART_MQTT} --help`,
    check: () => expect(MANIFEST.scripts.start).toBe(`node bin/payfleet.mjs ${QUICKSTART_MQTT}`),
    why: 'the same command line as `npm start` (asserted here), which runs shrunk above; --help makes the CLI parse every flag (a bad one exits 2) without running',
  },
  [`npx payfleet ${QUICKSTART_MQTT} --metrics-port 9464`]: {
    run: `npx payfleet ${QUICKSTART_MQTT} --metrics-port 9464 --help`,
    why: 'a third mqtt run of a minute; --help makes the CLI parse every flag (a bad one exits 2) without running. The endpoint itself is tested in sim/mqtt/observability.test.ts and sim/run/prometheus.test.ts',
  },
  [`npx payfleet ${QUICKSTART_MQTT} --ledger postgres://postgres@127.0.0.1:5432/postgres --ledger-pgdata /var/lib/postgresql/15/main`]: {
    run: `npx payfleet ${QUICKSTART_MQTT} --ledger postgres://postgres@127.0.0.1:5432/postgres --ledger-pgdata /var/lib/postgresql/15/main --help`,
    why: "it needs a PostgreSQL running on that port and data directory, which this test does not own; --help makes the CLI parse every flag (a bad one exits 2) without running. sim/mqtt/databaseCrash.test.ts runs the quickstart with a databaseCrash fault this way on a throwaway cluster it crashes, and sim/cli/commands/run.test.ts the refusals",
  },
  'npx payfleet run scenarios/chaos.yaml --seed 42 --terminals 500 --duration 2h --out runs/chaos-42': {
    run: 'npx payfleet run scenarios/chaos.yaml --seed 42 --terminals 100 --duration 2h --out runs/chaos-42',
    why: 'run twice (run, then replay); 500 terminals take about 15 s of CPU here each time, 100 keep every fault of chaos.yaml',
  },
  [`npx payfleet ${QUICKSTART_MQTT} --broker mqtt://127.0.0.1:1883 --out runs/quickstart-broker`]: {
    run: `npx payfleet ${QUICKSTART_MQTT} --broker mqtt://127.0.0.1:1883 --out runs/quickstart-broker ${MQTT_SHRUNK}`,
    why: 'a minute of wall time at full size; shrunk, it still runs on the broker started by the line before, writes registry.json for the server line after, and must end with the verdict OK',
  },
  'mosquitto -c runs/mosquitto-quickstart/mosquitto.conf &': {
    run: '(mosquitto -c runs/mosquitto-quickstart/mosquitto.conf & until (echo > /dev/tcp/127.0.0.1/1885) 2>/dev/null; do sleep 0.1; done; echo listening on 1885; wait) &',
    why: "run as written, in a subshell that says when the port accepts connections: Mosquitto's own log line does not reach a pipe until its buffer fills, and the test waits for a ready line",
  },
  [`npx payfleet ${QUICKSTART_MQTT} --broker mqtt://127.0.0.1:1885 --out runs/quickstart-mosquitto`]: {
    run: `npx payfleet ${QUICKSTART_MQTT} --broker mqtt://127.0.0.1:1885 --out runs/quickstart-mosquitto --help`,
    why: 'a minute of wall time; --help makes the CLI parse every flag without running. The Mosquitto started by the line before from the files broker-config wrote is the one sim/cli/commands/brokerConfig.test.ts logs the run\'s identities into, and runs on an external Mosquitto are sim/mqtt/runMqtt.test.ts\'s',
  },
  [`npx payfleet ${QUICKSTART_MQTT} --broker mqtt://127.0.0.1:1884 --server-broker mqtt://127.0.0.1:1886 --out runs/quickstart-cluster`]: {
    run: `npx payfleet ${QUICKSTART_MQTT} --broker mqtt://127.0.0.1:1884 --server-broker mqtt://127.0.0.1:1886 --out runs/quickstart-cluster --help`,
    why: 'a minute of wall time; --help makes the CLI parse every flag without running. sim/mqtt/cluster.test.ts runs the quickstart this way on Redis and two clustered brokers (and again with broker A SIGKILLed mid-run)',
  },
  'NODE_OPTIONS=--max-old-space-size=16000 npx payfleet run scenarios/city-day.yaml': {
    run: 'NODE_OPTIONS=--max-old-space-size=16000 npx payfleet run scenarios/city-day.yaml --terminals 50 --quiet',
    why: '100,000 terminals over 24 h take 517 s and 9.8 GiB here; 50 terminals play the same day, outage and checks',
  },
  'npm run bench': {
    check: () => {
      expect(MANIFEST.scripts.bench).toContain('load/bench/main.ts');
      expect(readFileSync(join(REPO_ROOT, 'load/bench/main.ts'), 'utf8')).toContain('process.env.BENCH_TERMINALS');
    },
    why: 'its baseline (500,000 scheduled events) and footprint (a 5,000-terminal fleet) are fixed and cost about 20 s of CPU even with BENCH_TERMINALS=100; tsc checks it compiles, and the simulator it times is run here on city-day',
  },
  'npm run bench -- --full': {
    check: () => {
      // The bench's own parser refuses an unknown flag (exit 2), so --help with --full proves --full is declared.
      const help = spawnSync(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'load/bench/main.ts'), '--full', '--help'], { cwd: REPO_ROOT, encoding: 'utf8' });
      expect(help.status, help.stderr).toBe(0);
      expect(help.stdout).toMatch(/--full\s+the whole 100,000-terminal day/);
    },
    why: 'the whole 100,000-terminal city-day: 517 s and 9.8 GiB here; checked: the bench declares --full (its parser accepts it with --help)',
  },
  'npm run bench:city': {
    run: 'npm run bench:city -- --help',
    output: /--days D\[,D…\]/,
    why: 'the whole 100,000-terminal day at the default heap takes over 25 minutes here; --help makes the bench parse its flags, and the line below runs it shrunk',
  },
  'npm run bench:city -- --terminals 2000 --days 1,7': {
    run: 'npm run bench:city -- --terminals 50 --days 1,2',
    output: /^run\s+50 terminals × 2 d: [\d.]+ s wall, [\d.]+ GiB peak RSS, .*exit 0 \(OK\)$/m,
    why: 'a day and a week of 2,000 terminals take about three minutes; 50 terminals for one and two days run the same children, measured the same way (load/bench/city/main.test.ts checks the figures it prints)',
  },
  'npm run bench:mqtt': {
    run: 'npm run bench:mqtt -- --terminals 20 --workers 1 --concurrency 1 --seconds 1 --out runs/bench-mqtt-small',
    why: '10,000 terminals and 10 s loops take about 2.5 minutes; 20 terminals in one worker with 1 s loops go through every phase (baseline, harness, storm, end checks)',
  },
  'npx payfleet calibrate --crypto ed25519 --out runs/calibration.json': {
    run: 'npx payfleet calibrate --crypto ed25519 --out runs/calibration.json --samples 5 --batch-sizes 1,4 --test-bed-rates 10,30 --test-bed-window 1s',
    output: /\| swarm \|[^\n]*\n[\s\S]*wrote runs\/calibration\.json/,
    why: '200 samples per kind, 7 batch sizes and two 4 s test-bed runs take about 70 s here; 5 samples, 2 sizes and 1 s test-bed runs measure every kind and the test bed and write the same file',
  },
  "npx payfleet capacity scenarios/quickstart.yaml --slo 'latency.remote.p99<800ms'": {
    run: "npx payfleet capacity scenarios/quickstart.yaml --slo 'latency.remote.p99<800ms' --shards 1 --min-rate 4 --max-rate 16 --out runs/capacity-docs/capacity.json",
    output: /recommended: 1 shard/,
    why: 'the whole search (3 shard counts, about 30 probes) takes 65-115 s here; one shard count from 4 to 16 orders/s goes through the same probes, table, recommendation, JSON and report',
  },
  "npx payfleet capacity scenarios/quickstart.yaml --slo 'latency.remote.p99<800ms' --mode mqtt --min-rate 20": {
    run: "npx payfleet capacity scenarios/quickstart.yaml --slo 'latency.remote.p99<800ms' --mode mqtt --min-rate 20 --help",
    why: 'each probe is a real-time mqtt run (broker, servers, swarm) of 20-40 s, and the search takes several: --help makes the CLI parse every flag (a bad one exits 2) without running. load/capacity/capacity.test.ts runs an mqtt probe',
  },
  "npx payfleet capacity scenarios/quickstart.yaml --slo 'latency.remote.p99<800ms' --compare --shards 2 --min-rate 20": {
    run: "npx payfleet capacity scenarios/quickstart.yaml --slo 'latency.remote.p99<800ms' --compare --shards 2 --min-rate 20 --help",
    why: 'both searches and four comparison probes, the real ones in real time: minutes. --help makes the CLI parse every flag without running',
  },
  "npx payfleet capacity load/scenarios/remote-debit-40.yaml --slo 'latency.remote.p99<500ms' --compare --shards 1 --warm-up 2s --window 3s --min-rate 20": {
    run: "npx payfleet capacity load/scenarios/remote-debit-40.yaml --slo 'latency.remote.p99<500ms' --compare --shards 1 --warm-up 2s --window 3s --min-rate 20 --help",
    why: 'about 20 real-time mqtt probes of 15-20 s each: minutes. --help makes the CLI parse every flag without running; load/capacity/capacity.test.ts runs an mqtt probe and the co-located model',
  },
  'npm run bench:server -- --ledger postgres://… --requests 8000': {
    run: 'npm run bench:server -- --ledger "$DOCS_POSTGRES_URL" --requests 200 --means 20',
    output: /\| sqlite full \|.*\n\| sqlite normal \|.*\n\| postgres synchronous_commit on \|.*\n\| postgres synchronous_commit off \|/,
    why: 'it needs a PostgreSQL: it runs on a throwaway cluster this test starts (sim/sd/postgresTestCluster.ts), with 200 requests instead of 8,000, and must print the four ledgers side by side',
  },
  'npm run bench:server': {
    run: 'npm run bench:server -- --requests 200 --means 20',
    why: '20,000 requests, each committed to SQLite with fsync: 200 show the same path',
  },
  'npx tsx sim/report/screenshot.ts runs/quickstart-1 docs/img/report-quickstart.png': {
    run: 'npx tsx sim/report/screenshot.ts',
    exitStatus: 2,
    output: /usage: npx tsx sim\/report\/screenshot\.ts/,
    why: 'launching Chromium costs about 13 s of CPU here; without arguments the script loads every module it needs and prints its usage (exit 2). sim/report/report.browser.test.ts opens reports in the same Chromium',
  },
};

/** Ports the docs name, mapped to free ones: a fixed port would collide with a Mosquitto on the machine or with a
 * second copy of this test running. */
const DOC_PORTS = [1883, 8083, 1884, 1885, 1886, 6379];

interface Finished {
  status: number | null;
  output: string;
}

function collect(child: ChildProcess): { output: () => string; done: Promise<Finished> } {
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const done = new Promise<Finished>((resolveDone) => child.on('close', (status) => resolveDone({ status, output })));
  return { output: () => output, done };
}

const commands = allDocCommands();
/** A throwaway PostgreSQL for the commands whose `run` names $DOCS_POSTGRES_URL; started only when one does. */
let postgres: PostgresTestCluster | undefined;
const background: { text: string; child: ChildProcess; done: Promise<Finished> }[] = [];
let mirror = '';
const env: Record<string, string> = {};

beforeAll(async () => {
  mirror = mkdtempSync(join(tmpdir(), 'payfleet-docs-'));
  for (const entry of readdirSync(REPO_ROOT)) {
    if (entry === '.git' || entry === 'runs') continue;
    if (entry === 'docs') cpSync(join(REPO_ROOT, entry), join(mirror, entry), { recursive: true });
    else symlinkSync(join(REPO_ROOT, entry), join(mirror, entry));
  }
  const binDir = join(mirror, '.payfleet-link', 'node_modules', '.bin');
  mkdirSync(binDir, { recursive: true });
  symlinkSync(join(REPO_ROOT, 'bin/payfleet.mjs'), join(binDir, 'payfleet'));
  Object.assign(env, process.env, { PATH: `${binDir}${delimiter}${process.env.PATH ?? ''}` });
  delete env.PAYFLEET_BROKER_SECRET;
  for (const port of DOC_PORTS) portMap.set(port, await freePort());
  if (commands.some((c) => SPECIAL[c.text]?.run?.includes('$DOCS_POSTGRES_URL'))) {
    postgres = await startPostgresTestCluster();
    env.DOCS_POSTGRES_URL = postgres.url;
  }
});

const portMap = new Map<number, number>();

/** Stops the background commands (broker, server): each runs in its own process group, so npm, npx and node
 * all get the signal. Also on exit, so an interrupted test leaves no server listening. */
function stopBackground(): void {
  for (const { child } of background) {
    if (child.pid && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // Already gone.
      }
    }
  }
}
process.once('exit', stopBackground);

afterAll(async () => {
  stopBackground();
  await Promise.all(background.map(({ done }) => done));
  if (mirror) rmSync(mirror, { recursive: true, force: true });
  postgres?.remove();
});

/**
 * `npx payfleet …` is run as `payfleet …` through the same link npx resolves to (the bin on PATH, as npm links
 * it): starting npm costs about 2 s of CPU per command, a third of this test's time, and bin.test.ts runs
 * `npx payfleet` and `npm exec -- payfleet` themselves. DOCS_TEST_NPX=1 runs npx as written.
 */
function withoutNpx(text: string): string {
  return process.env.DOCS_TEST_NPX === '1' ? text : text.replace(/(^|\s)npx payfleet(?=\s|$)/g, '$1payfleet');
}

function withPorts(text: string): string {
  let mapped = text;
  for (const [docPort, port] of portMap) mapped = mapped.replace(new RegExp(`\\b${docPort}\\b`, 'g'), String(port));
  return mapped;
}

async function runLine(text: string, exitStatus: number): Promise<Finished> {
  const exportedName = /^export ([A-Z_][A-Z0-9_]*)=/.exec(text)?.[1];
  const script = exportedName ? `${text}; printf %s "$${exportedName}"` : withPorts(withoutNpx(text));
  if (script.endsWith('&')) {
    const child = spawn('bash', ['-c', script.slice(0, -1).trim()], { cwd: mirror, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const { output, done } = collect(child);
    background.push({ text, child, done });
    // A server in the background is usable once it says so: payfleet's print "listening on" or "ready on", Redis
    // "Ready to accept connections".
    for (let waitedMs = 0; !/listening on|ready on|Ready to accept connections/.test(output()); waitedMs += 100) {
      if (waitedMs > 90_000 || child.exitCode !== null) throw new Error(`${text}: never said it was ready:\n${output()}`);
      await new Promise((wake) => setTimeout(wake, 100));
    }
    return { status: 0, output: output() };
  }
  const finished = await collect(spawn('bash', ['-c', script], { cwd: mirror, env, stdio: ['ignore', 'pipe', 'pipe'] })).done;
  expect(finished.status, `${text}\n${finished.output}`).toBe(exitStatus);
  if (exportedName) env[exportedName] = finished.output.split('\n').at(-1) ?? '';
  return finished;
}

describe('the docs name what exists', () => {
  it('finds commands in the README and docs/', () => {
    expect(commands.length).toBeGreaterThan(10);
    expect(commands.map((c) => c.text)).toContain('npx payfleet run scenarios/quickstart.yaml');
  });

  it('every special entry is still in the docs, and every command with a placeholder has one', () => {
    const texts = new Set(commands.map((c) => c.text));
    expect(Object.keys(SPECIAL).filter((text) => !texts.has(text)), 'table entries no longer in the docs').toEqual([]);
    const unrunnable = commands.filter((c) => PLACEHOLDER.test(c.text) && !SPECIAL[c.text]);
    expect(unrunnable.map((c) => `${c.where}: ${c.text}`), 'placeholders: make them concrete or add a table entry').toEqual([]);
  });

  it('every folder of sim/ has a README.md and a row in the README\'s Layout table', () => {
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    const folders = readdirSync(join(REPO_ROOT, 'sim'), { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => entry.name);
    expect(folders.filter((folder) => !existsSync(join(REPO_ROOT, 'sim', folder, 'README.md'))), 'without README.md').toEqual([]);
    expect(folders.filter((folder) => !readme.includes(`| \`sim/${folder}/\` |`)), 'without a Layout row').toEqual([]);
  });

  it('every file path the README and docs/ name exists', () => {
    const missing: string[] = [];
    for (const file of DOC_FILES) {
      const text = readFileSync(join(REPO_ROOT, file), 'utf8');
      // Links are relative to the document; code spans that start with a top-level folder are relative to the repo.
      const prose = text.replace(/`[^`\n]*`/g, '');
      for (const [, link = ''] of prose.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
        if (/^[a-z]+:/.test(link)) continue;
        if (!existsSync(resolve(REPO_ROOT, dirname(file), link))) missing.push(`${file}: link ${link}`);
      }
      for (const [, span = ''] of text.matchAll(/`((?:machines|broker|sim|load|properties|scenarios|docs|bin|\.ci)\/[^`\s]*)`/g)) {
        const path = span.replace(/\/$/, '');
        if (/[*<>{}…]/.test(path)) continue;
        if (!existsSync(join(REPO_ROOT, path))) missing.push(`${file}: ${path}`);
      }
    }
    expect(missing).toEqual([]);
  });
});

describe('every command in the docs works', () => {
  for (const command of commands) {
    const special = SPECIAL[command.text];
    const how = special ? (special.run ? `run as \`${special.run}\`` : 'checked by parsing') : 'run as written';
    it(`${command.where}: ${command.text} (${how})`, async () => {
      special?.check?.();
      if (special && !special.run) return;
      const line = special?.run ?? command.text;
      const finished = await runLine(line, special?.exitStatus ?? 0);
      if (special?.output) expect(finished.output).toMatch(special.output);
      // A run or a bench ends by saying what it wrote; a silent exit 0 (the bug of issue 12) must not pass.
      if (/payfleet run |npm start|bench:mqtt/.test(line) && !line.includes('--help')) expect(finished.output).toMatch(/\bwrote /);
    }, 240_000);
  }
});
