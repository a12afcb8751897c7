import { basename } from 'node:path';

/** The longest name `processName` returns. */
export const PROCESS_NAME_MAX = 48;

/** Words that only wrap the command that matters: `sudo make` is named after `make`. */
const WRAPPERS: ReadonlySet<string> = new Set(['sudo', 'env', 'nohup', 'time', 'exec', 'nice', 'stdbuf']);

/**
 * A short name for people and agents: the command's verb and its first target, e.g. `npm test`,
 * `make build`, `tail app.log`, `python train.py`. Of a shell line, the first part that is not a
 * `cd` (`cd web && npm test` is `npm test`); environment assignments, wrappers (`sudo`, `env`) and
 * flags are skipped; paths are shown by their last part.
 */
export function processName(command: string | readonly string[]): string {
  const words = typeof command === 'string' ? mainPart(command) : [...command];
  let index = 0;
  while (index < words.length && (isAssignment(words[index]!) || WRAPPERS.has(words[index]!))) index++;
  const verb = words[index];
  if (verb === undefined) return clip(typeof command === 'string' ? command.trim() : command.join(' '));
  const target = words.slice(index + 1).find((word) => !word.startsWith('-'));
  return clip(target === undefined ? short(verb) : `${short(verb)} ${short(target)}`);
}

/** The words of the first part of a shell line that does something besides changing directory. */
function mainPart(line: string): string[] {
  const parts = line.split(/&&|\|\||[;|\n]/).map(words);
  return parts.find((part) => part.length > 0 && part[0] !== 'cd') ?? parts[0] ?? [];
}

/** Whitespace-separated words, with simple quotes removed (a name needs no exact shell parsing). */
function words(part: string): string[] {
  return part
    .trim()
    .split(/\s+/)
    .filter((word) => word !== '')
    .map((word) => word.replace(/^(['"])(.*)\1$/, '$2'));
}

function isAssignment(word: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*=/.test(word);
}

function short(word: string): string {
  return word.includes('/') && !word.endsWith('/') ? basename(word) : word;
}

function clip(name: string): string {
  return name.length <= PROCESS_NAME_MAX ? name : `${name.slice(0, PROCESS_NAME_MAX - 1)}…`;
}
