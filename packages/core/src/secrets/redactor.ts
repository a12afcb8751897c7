import { hasEscapes, stripAnsi } from './ansi.js';

/**
 * What is redacted from output, as plain data: it crosses to poller threads. Validated where it is
 * made (`secrets-config.ts`): every pattern compiles and runs in linear time.
 */
export interface RedactionRules {
  /** Regex sources; every match is replaced. */
  readonly patterns: readonly string[];
  /** Secret values, replaced wherever they occur. */
  readonly values: readonly string[];
}

/** What stands in place of a redacted secret. */
export const REDACTED = '[REDACTED]';

/**
 * Characters of output read before a tail's cut, so that a secret the cut would split is redacted
 * whole (longer ones can show in part) and escape sequences do not eat the tail's length.
 */
export const REDACTION_MARGIN = 512;

export interface VisibleOptions {
  /** Keep the terminal escape sequences (`log` on request). Default false. */
  readonly ansi?: boolean;
}

/**
 * Makes process output fit for an agent or a client: terminal escape sequences stripped, secret
 * values and the matches of the redaction patterns replaced by `[REDACTED]`. Used wherever output
 * leaves vigil (match lines and heartbeats in the poller, tails, `log`, live output); the spool
 * keeps the raw bytes.
 */
export class Redactor {
  readonly #regexes: readonly RegExp[];

  constructor(rules: RedactionRules) {
    // Longest first: a value that contains another is replaced whole.
    const values = [...new Set(rules.values)]
      .filter((value) => value !== '')
      .sort((a, b) => b.length - a.length);
    this.#regexes = [
      ...(values.length === 0 ? [] : [new RegExp(values.map(escapeRegex).join('|'), 'g')]),
      ...rules.patterns.map((source) => new RegExp(source, 'g')),
    ];
  }

  /** `text` with every secret replaced; escape sequences stay. */
  redact(text: string): string {
    return this.#redact(text).text;
  }

  /**
   * `text` as an agent sees it: escape sequences stripped, secrets redacted. With `ansi` the escape
   * sequences stay, unless one splits a secret: the text is then stripped after all.
   */
  visible(text: string, options: VisibleOptions = {}): string {
    if (options.ansi !== true || !hasEscapes(text)) return this.#redact(stripAnsi(text)).text;
    const kept = this.#redact(text);
    const stripped = this.#redact(stripAnsi(text));
    return stripped.count > kept.count ? stripped.text : kept.text;
  }

  /**
   * The last `chars` characters (code points) of `text` made visible; read `chars +
   * REDACTION_MARGIN` characters of output for it.
   */
  tail(text: string, chars: number): string {
    return lastChars(this.visible(text), chars);
  }

  #redact(text: string): { text: string; count: number } {
    let count = 0;
    let out = text;
    for (const re of this.#regexes) {
      out = out.replace(re, (match) => {
        // A pattern that matches nothing here (`\b`) must not fill the text with markers.
        if (match === '') return '';
        count += 1;
        return REDACTED;
      });
    }
    return { text: out, count };
  }
}

/** The last `chars` code points of `text` (a surrogate pair is never split). */
export function lastChars(text: string, chars: number): string {
  if (chars <= 0) return '';
  let cut = text.length;
  for (let count = 0; count < chars && cut > 0; count++) {
    const low = text.charCodeAt(cut - 1);
    const high = cut >= 2 ? text.charCodeAt(cut - 2) : 0;
    cut -= low >= 0xdc00 && low <= 0xdfff && high >= 0xd800 && high <= 0xdbff ? 2 : 1;
  }
  return text.slice(cut);
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
