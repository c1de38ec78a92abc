import { describe, expect, it } from 'vitest';
import { defineFlags, formatHelp, parseArgs, tokenize, UsageError } from './args.ts';

const FLAGS = defineFlags({
  seed: { kind: 'int', help: 'a seed' },
  port: { kind: 'int', min: 0, max: 65_535, help: 'a port' },
  rate: { kind: 'number', help: 'a rate' },
  duration: { kind: 'duration', help: 'a duration' },
  mode: { kind: 'string', oneOf: ['virtual', 'mqtt'], help: 'a mode' },
  secret: { kind: 'string', help: 'a secret' },
  db: { kind: 'string', required: true, help: 'a file' },
  slo: { kind: 'string', multiple: true, help: 'an SLO' },
  shards: { kind: 'string', parse: (text: string) => text.split(',').map(Number), help: 'shards' },
  quiet: { kind: 'boolean', help: 'quiet' },
  help: { kind: 'boolean', short: 'h', help: 'help' },
});

const parse = (...argv: string[]) => parseArgs(['--db', 'x.db', ...argv], FLAGS);
/** The UsageError `parse(...argv)` throws (the test fails when it throws none). */
const refusalOf = (...argv: string[]): UsageError => {
  const error = (() => {
    try {
      parse(...argv);
    } catch (thrown) {
      return thrown;
    }
  })();
  expect(error).toBeInstanceOf(UsageError);
  return error as UsageError;
};

describe('the one argv parser', () => {
  it('reads --flag value and --flag=value alike, typed by the table', () => {
    expect(parse('--seed', '7', '--mode=mqtt', '--rate', '2.5', '--duration=90s', 'file.yaml').flags).toMatchObject({ seed: 7, mode: 'mqtt', rate: 2.5, duration: 90_000, db: 'x.db' });
    expect(parse('--seed=7').flags.seed).toBe(parse('--seed', '7').flags.seed);
    expect(parse('a', '--quiet', 'b').positionals).toEqual(['a', 'b']);
  });

  it("takes a value that begins with '-' only inline, and says how when it is given apart", () => {
    expect(parse('--secret=-abc').flags.secret).toBe('-abc');
    const error = refusalOf('--secret', '-abc');
    expect(error.message).toBe("--secret: expected a value, got the flag-like '-abc' (a value that begins with '-' is given as --secret=-abc)");
    expect(error.flag).toBe('secret');
  });

  it('refuses unknown flags, missing and malformed values, and missing required flags, naming the flag', () => {
    expect(refusalOf('--sead', '1').message).toMatch(/^unknown flag --sead \(known: --seed, /);
    expect(refusalOf('-x').message).toMatch(/^unknown flag -x /);
    expect(refusalOf('--seed').message).toBe('--seed: expected a value');
    expect(refusalOf('--seed', 'x').message).toBe("--seed: expected an integer ≥ 0, got 'x'");
    expect(refusalOf('--port=70000').message).toBe("--port: expected an integer from 0 to 65535, got '70000'");
    expect(refusalOf('--rate', '0').message).toBe("--rate: expected a positive number, got '0'");
    expect(refusalOf('--duration', 'soon').message).toMatch(/^--duration: expected a duration/);
    expect(refusalOf('--mode', 'real').message).toBe("--mode: expected virtual or mqtt, got 'real'");
    expect(refusalOf('--secret=').message).toBe("--secret: expected a value, got ''");
    expect(refusalOf('--quiet=yes').message).toMatch(/^--quiet: a switch takes no value/);
    expect(() => parseArgs([], FLAGS)).toThrow(new UsageError('--db: required', 'db'));
  });

  it('collects a repeatable flag in order, keeps the last of another, and parses a flag with its own parser', () => {
    const { flags } = parse('--slo', 'a < 1', '--slo=b < 2', '--seed', '1', '--seed', '2', '--shards', '0,2');
    expect(flags.slo).toEqual(['a < 1', 'b < 2']);
    expect(flags.seed).toBe(2);
    expect(flags.shards).toEqual([0, 2]);
  });

  it('reads -h as --help (no required flag is asked for then), and takes everything after -- as positionals', () => {
    expect(parseArgs(['-h'], FLAGS).flags.help).toBe(true);
    expect(parse('--', '--seed', '-x').positionals).toEqual(['--seed', '-x']);
  });

  it('tokenizes argv into flags with the tokens they took, for passing some of them on unchanged', () => {
    expect(tokenize(['s.yaml', '--duration', '30m', '--quiet', '--seed=3'], FLAGS)).toEqual([
      { kind: 'positional', value: 's.yaml' },
      { kind: 'flag', name: 'duration', tokens: ['--duration', '30m'], value: '30m' },
      { kind: 'flag', name: 'quiet', tokens: ['--quiet'], value: undefined },
      { kind: 'flag', name: 'seed', tokens: ['--seed=3'], value: '3' },
    ]);
  });

  it('writes a help line per flag with its placeholder, default, and whether it is required or repeats', () => {
    const help = formatHelp('x [options]', 'Does x.', FLAGS, 'Runs until stopped.');
    expect(help.split('\n').slice(0, 3)).toEqual(['usage: x [options]', '', 'Does x.']);
    expect(help).toMatch(/--mode virtual\|mqtt +a mode\n/);
    expect(help).toMatch(/--db <string> +a file \(required\)/);
    expect(help).toMatch(/--slo <string> +an SLO \(may repeat\)/);
    expect(help).toMatch(/-h, --help +help/);
    expect(help.endsWith('\n\nRuns until stopped.')).toBe(true);
  });
});
