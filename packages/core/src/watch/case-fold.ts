/**
 * Case-insensitive matching without the `i` flag, for the sources where that is exact: every ASCII
 * letter becomes both its cases (`a` → `[aA]`, `[a-c]` → `[a-cA-C]`). V8's linear-time engine
 * refuses the `i` flag on Node 20, so `/error/i` could otherwise neither fall back to linear time
 * when it runs away nor share a thread with healthy sessions (`regex-engine.ts`).
 *
 * Without the `u` flag, `i` folds a character to its upper case unless that would turn a non-ASCII
 * character into an ASCII one: among ASCII characters, exactly the letters fold. So the rewrite is
 * exact for a source whose letters are ASCII. It gives up (undefined) on what it cannot fold
 * exactly: a cased non-ASCII character, a range reaching past ASCII, an escape that names a code
 * point (`\x41`, `\u0041`, `\cA`, octal), or a backreference (it needs backtracking anyway).
 */
export function foldAsciiCase(source: string): string | undefined {
  let out = '';
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const char = source[i]!;
    if (char === '\\') {
      const next = source[++i];
      if (next === undefined || 'xuck0123456789'.includes(next)) return undefined;
      // An escape that starts a range: the letters in the range would need their other case.
      if (inClass && source[i + 1] === '-' && source[i + 2] !== ']' && !'dDwWsS'.includes(next))
        return undefined;
      // Without `u`, an escaped letter with no meaning of its own (`\e`) is that letter.
      out += ESCAPES.includes(next) || !isAsciiLetter(next) ? `\\${next}` : letterCases(next, !inClass);
      continue;
    }
    if (source.charCodeAt(i) > 0x7f) {
      if (char.toLowerCase() !== char.toUpperCase()) return undefined;
      // A range from it may hold cased characters (`[×-÷]` holds `ø`).
      if (inClass && source[i + 1] === '-' && source[i + 2] !== undefined && source[i + 2] !== ']')
        return undefined;
      out += char;
      continue;
    }
    if (inClass) {
      if (char === ']') {
        inClass = false;
        out += char;
        continue;
      }
      // A range: both ends plain characters (an escape at either end is copied as it is: the
      // ones that can stand there, \b \t \f..., are not letters).
      if (source[i + 1] === '-' && source[i + 2] !== undefined && source[i + 2] !== ']') {
        const last = source[i + 2]!;
        if (last === '\\') return undefined;
        const [low, high] = [char.charCodeAt(0), last.charCodeAt(0)];
        if (high > 0x7f) return undefined;
        out += `${char}-${last}${mirroredRanges(low, high)}`;
        i += 2;
        continue;
      }
      out += letterCases(char, false);
      continue;
    }
    if (char === '[') {
      inClass = true;
      out += '[';
      if (source[i + 1] === '^') {
        out += '^';
        i++;
      }
      continue;
    }
    if (char === '(' && source.startsWith('?<', i + 1) && !'=!'.includes(source[i + 3] ?? '=')) {
      // A group's name is not text to match: copy it as it is.
      const close = source.indexOf('>', i);
      if (close === -1) return undefined;
      out += source.slice(i, close + 1);
      i = close;
      continue;
    }
    out += letterCases(char, true);
  }
  return inClass ? undefined : out;
}

/** Escapes that mean something else than their letter without the `u` flag. */
const ESCAPES = 'bBdDwWsSnrtvf';

function isAsciiLetter(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/** `c` with its other case when it is an ASCII letter: as a class (`[aA]`), or bare inside one. */
function letterCases(c: string, asClass: boolean): string {
  if (!isAsciiLetter(c)) return c;
  const other = c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase();
  return asClass ? `[${c}${other}]` : `${c}${other}`;
}

/** The other case of the letters in the range `low`–`high`, as ranges to add to a class. */
function mirroredRanges(low: number, high: number): string {
  let out = '';
  for (const [from, to, shift] of [
    [0x61, 0x7a, -0x20],
    [0x41, 0x5a, 0x20],
  ] as const) {
    const start = Math.max(low, from);
    const end = Math.min(high, to);
    if (start <= end) out += `${String.fromCharCode(start + shift)}-${String.fromCharCode(end + shift)}`;
  }
  return out;
}
