/**
 * Terminal escape sequences (ECMA-48), as a terminal would consume them rather than show them: CSI
 * (`ESC [` or U+009B, parameters, intermediates, a final byte: colours, cursor moves), OSC (`ESC ]`
 * up to BEL or `ESC \`: titles, hyperlinks), DCS/SOS/PM/APC strings, the other escapes (`ESC ( B`,
 * `ESC =`), and a lone ESC. None spans a newline, so stripping keeps every line where it was; each
 * alternative starts at an ESC and cannot backtrack past the next one, so it runs in linear time.
 */
const ESCAPE_SOURCE = [
  '(?:\\u001b\\[|\\u009b)[0-?]*[ -/]*[@-~]',
  '\\u001b\\][^\\u0007\\u001b\\n]*(?:\\u0007|\\u001b\\\\)?',
  '\\u001b[PX^_][^\\u001b\\n]*(?:\\u001b\\\\)?',
  '\\u001b[ -/]*[0-~]',
  '\\u001b',
].join('|');

const ESCAPES = new RegExp(ESCAPE_SOURCE, 'g');

/** Whether `text` may hold an escape sequence (it has an ESC, or the 8-bit CSI). */
export function hasEscapes(text: string): boolean {
  return text.includes('\u001b') || text.includes('\u009b');
}

/** `text` without its terminal escape sequences; every newline stays. */
export function stripAnsi(text: string): string {
  return hasEscapes(text) ? text.replace(ESCAPES, '') : text;
}
