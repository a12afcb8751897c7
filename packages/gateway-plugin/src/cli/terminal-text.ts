/**
 * Text for a terminal, from a source that may be hostile: a process's output, a command, a session
 * or client's text. Every control character except newline and tab (C0, DEL, C1) and every
 * bidirectional-override character becomes a visible escape (`\x1b`, `\u202e`), so that what a
 * process printed cannot move the cursor, set the window title, clear the screen, overwrite a line
 * with `\r` or reorder what follows. Newlines stay: the callers indent continuation lines.
 */
export function neutraliseControls(text: string): string {
  let out = '';
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (!isHazard(code)) continue;
    out += text.slice(start, i) + visible(code);
    start = i + 1;
  }
  return start === 0 ? text : out + text.slice(start);
}

function isHazard(code: number): boolean {
  if (code === 0x0a || code === 0x09) return false;
  if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) return true;
  // Bidirectional marks, embeddings, overrides and isolates.
  return (
    code === 0x061c ||
    code === 0x200e ||
    code === 0x200f ||
    (code >= 0x202a && code <= 0x202e) ||
    (code >= 0x2066 && code <= 0x2069)
  );
}

function visible(code: number): string {
  return code <= 0xff
    ? `\\x${code.toString(16).padStart(2, '0')}`
    : `\\u${code.toString(16).padStart(4, '0')}`;
}
