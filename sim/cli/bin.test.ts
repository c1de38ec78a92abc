// Goal: `payfleet` works however npm installs it: through a link named `payfleet` in node_modules/.bin (what
// `npm install`, `npm install -g` and `npm link` make), through `npx payfleet` and through `npm exec -- payfleet`
// in the repository. Before, the CLI ran its main only when process.argv[1] ended in `payfleet.mjs`, so every one
// of these printed nothing and exited 0 (issue 12): a silent success is the worst failure a CLI can have.
// Method: make the link exactly as npm does (a symlink to bin/payfleet.mjs, which is executable and starts with a
// `#!/usr/bin/env node` line), put its folder first on PATH, and run the command by its name, without a shell
// and without naming node; run npx and npm exec in the repository. Assert the usage text and exit 0 for --help,
// exit 2 and a message for an unknown command, and that a run writes summary.json and exits 0.
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';

const REPO_ROOT = resolve(import.meta.dirname, '../..');
const BIN_FILE = join(REPO_ROOT, 'bin/payfleet.mjs');
const USAGE_LINE = 'usage: payfleet <command> [options]';

const tempDirs: string[] = [];
afterAll(() => tempDirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/** A temp node_modules/.bin holding `payfleet` as npm makes it: a symlink to the package's bin file. */
function installedBinDir(): string {
  const binDir = join(tempDir('payfleet-bin-'), 'node_modules', '.bin');
  mkdirSync(binDir, { recursive: true });
  symlinkSync(BIN_FILE, join(binDir, 'payfleet'));
  return binDir;
}

function runCommand(command: string, args: string[], binDir?: string) {
  const path = binDir ? `${binDir}${delimiter}${process.env.PATH ?? ''}` : process.env.PATH;
  const result = spawnSync(command, args, { cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000, env: { ...process.env, PATH: path } });
  return { status: result.status, out: result.stdout ?? '', err: result.stderr ?? '', error: result.error };
}

// npx and npm exec start npm itself (about 2 s of CPU each) before payfleet: on a busy machine that takes a while.
const NPM_TIMEOUT_MS = 180_000;

describe('the payfleet bin as npm installs it', () => {
  it('is a file npm can link: in package.json "bin", executable, with a node shebang', () => {
    const manifest = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    expect(manifest.bin).toEqual({ payfleet: 'bin/payfleet.mjs' });
    expect(() => accessSync(BIN_FILE, constants.X_OK)).not.toThrow();
    expect(readFileSync(BIN_FILE, 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node');
  });

  describe('through a link named payfleet on PATH (npm install, npm link)', () => {
    const binDir = installedBinDir();

    it('prints the usage for --help and exits 0', () => {
      const help = runCommand('payfleet', ['--help'], binDir);
      expect(help.error).toBeUndefined();
      expect(help.status, help.err).toBe(0);
      expect(help.out).toContain(USAGE_LINE);
      expect(help.out).toMatch(/^\s+run\s+run a scenario/m);
    });

    it('refuses an unknown command with exit 2 and says which', () => {
      const unknown = runCommand('payfleet', ['frobnicate'], binDir);
      expect(unknown.status).toBe(2);
      expect(unknown.err).toContain("unknown command 'frobnicate'");
    });

    it('runs the quickstart, writes summary.json and exits 0', () => {
      const out = join(tempDir('payfleet-bin-run-'), 'quickstart');
      const run = runCommand('payfleet', ['run', 'scenarios/quickstart.yaml', '--quiet', '--out', out], binDir);
      expect(run.status, run.err).toBe(0);
      expect(existsSync(join(out, 'summary.json'))).toBe(true);
      const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { ok: boolean; traceHash: string };
      expect(summary.ok).toBe(true);
      expect(run.out).toContain(`trace ${summary.traceHash}`);
    });
    it('carries on to its end when its reader goes away (payfleet run … | head -n 1): files written, its own exit status, no stack trace', () => {
      const out = join(tempDir('payfleet-bin-pipe-'), 'quickstart');
      // head exits after the first line (printed before the run starts); every later line meets a closed pipe.
      const script = `payfleet run scenarios/quickstart.yaml --terminals 30 --duration 15m --out '${out}' | head -n 1; exit \${PIPESTATUS[0]}`;
      const piped = runCommand('bash', ['-c', script], binDir);
      expect(piped.status, piped.err).toBe(0);
      expect(piped.out.trim()).toBe('payfleet run scenarios/quickstart.yaml');
      expect(piped.err).not.toMatch(/EPIPE|Unhandled/);
      expect(JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')).ok).toBe(true);
    });
  });

  describe('through npm in the repository', () => {
    it('npx payfleet --help prints the usage and exits 0; an unknown command exits 2', () => {
      const help = runCommand('npx', ['payfleet', '--help']);
      expect(help.status, help.err).toBe(0);
      expect(help.out).toContain(USAGE_LINE);
      const unknown = runCommand('npx', ['payfleet', 'frobnicate']);
      expect(unknown.status).toBe(2);
      expect(unknown.err).toContain("unknown command 'frobnicate'");
    }, NPM_TIMEOUT_MS);

    it('npm exec -- payfleet --help prints the usage and exits 0', () => {
      const help = runCommand('npm', ['exec', '--', 'payfleet', '--help']);
      expect(help.status, help.err).toBe(0);
      expect(help.out).toContain(USAGE_LINE);
    }, NPM_TIMEOUT_MS);
  });
});
