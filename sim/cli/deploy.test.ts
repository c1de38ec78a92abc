// Goal: the deploy files (deploy/k8s/*.yaml and their README) and the README's section on many machines cannot
// drift from the CLI: every `payfleet` command line in them parses with the CLI's own flag tables.
// Method: collect the argv of every container running the payfleet image (its `args`; the image's entrypoint is
// `payfleet`) and every `payfleet`/`npx payfleet` line of their shell blocks, then run each through `main` with
// `--help` added: the parser reads every flag and value first (a bad one is exit status 2), and --help stops
// before anything runs. A scenario file a command names must exist in the repository.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { main } from './main.ts';

const REPO_ROOT = resolve(import.meta.dirname, '../..');
const K8S_DIR = join(REPO_ROOT, 'deploy', 'k8s');
const PAYFLEET_IMAGE = /^payfleet(:|$)/;

interface CommandLine {
  where: string;
  argv: string[];
}

/** Every container (in any pod template) whose image is payfleet's: its args are a payfleet command line. */
function manifestCommands(file: string): CommandLine[] {
  const lines: CommandLine[] = [];
  const visit = (node: unknown, path: string): void => {
    if (Array.isArray(node)) return node.forEach((item, i) => visit(item, `${path}[${i}]`));
    if (typeof node !== 'object' || node === null) return;
    const record = node as Record<string, unknown>;
    if (typeof record.image === 'string' && PAYFLEET_IMAGE.test(record.image)) {
      expect(record.command, `${file} ${path}: the image's entrypoint is payfleet; give args, not command`).toBeUndefined();
      lines.push({ where: `${file} ${path}`, argv: (record.args as unknown[]).map(String) });
    }
    for (const [key, value] of Object.entries(record)) visit(value, `${path}.${key}`);
  };
  for (const document of parseAllDocuments(readFileSync(join(K8S_DIR, file), 'utf8'))) visit(document.toJS(), '');
  return lines;
}

/** Splits a shell line into words: spaces, single and double quotes; $(…) left as one word. */
function shellWords(line: string): string[] {
  const words: string[] = [];
  for (const match of line.matchAll(/'([^']*)'|"([^"]*)"|(\$\([^)]*\)|[^\s'"]+)+/g)) words.push(match[1] ?? match[2] ?? match[0]);
  return words;
}

/** The payfleet command lines of a Markdown text's shell blocks (after a `from` heading, up to the next one). */
function markdownCommands(file: string, from?: string): CommandLine[] {
  let text = readFileSync(join(REPO_ROOT, file), 'utf8');
  if (from) {
    const start = text.indexOf(from);
    expect(start, `${file}: no section ${from}`).toBeGreaterThanOrEqual(0);
    const end = text.indexOf('\n## ', start + from.length);
    text = text.slice(start, end === -1 ? undefined : end);
  }
  const lines: CommandLine[] = [];
  let inShell = false;
  text.split('\n').forEach((line, index) => {
    if (/^\s*```/.test(line)) {
      inShell = !inShell && /^\s*```(sh|bash|shell)\b/.test(line);
      return;
    }
    if (!inShell) return;
    const code = line.replace(/(^|\s)#\s.*$/, '').replace(/&\s*$/, '').trim();
    const words = shellWords(code).filter((w) => !/^[A-Z_][A-Z0-9_]*=/.test(w));
    const start = words[0] === 'npx' && words[1] === 'payfleet' ? 2 : words[0] === 'payfleet' ? 1 : -1;
    if (start >= 0) lines.push({ where: `${file}: ${code}`, argv: words.slice(start) });
    void index;
  });
  return lines;
}

async function parsesWithCli(argv: string[]): Promise<{ status: number; errors: string }> {
  const errors: string[] = [];
  const status = await main([...argv, '--help'], { out: () => undefined, err: (line) => errors.push(line), env: { PAYFLEET_BROKER_SECRET: 'parse-only' } });
  return { status, errors: errors.join('\n') };
}

const manifests = readdirSync(K8S_DIR).filter((name) => name.endsWith('.yaml')).sort();
const commands = [
  ...manifests.flatMap(manifestCommands),
  ...markdownCommands('deploy/k8s/README.md'),
  ...markdownCommands('README.md', '## Many machines'),
];

describe('deploy files and the README on many machines: every payfleet command line parses with the CLI', () => {
  it('finds the commands: broker, coordinator and agent in the manifests, and the hand-run ones in the README', () => {
    expect(manifests).toEqual(['agents.yaml', 'brokers.yaml', 'coordinator.yaml', 'redis.yaml']);
    const names = commands.map((c) => c.argv[0]);
    for (const name of ['broker', 'run', 'agent']) expect(names.filter((n) => n === name).length, name).toBeGreaterThanOrEqual(2);
  });

  for (const command of commands) {
    it(command.where, async () => {
      const { status, errors } = await parsesWithCli(command.argv);
      expect(status, `${command.argv.join(' ')}\n${errors}`).toBe(0);
      if (command.argv[0] === 'run') expect(existsSync(join(REPO_ROOT, command.argv[1]!)), command.argv[1]).toBe(true);
    });
  }
});
