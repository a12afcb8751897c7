import { stripAnsi } from '../secrets/ansi.js';
import { type LineRun, lineText, runLines, runPieces, type SplitLine } from './line-splitter.js';
import type { CompiledPatterns } from './patterns.js';

const LF = 10;
const ESC = 0x1b;
/** The last byte of U+009B (the 8-bit CSI) in UTF-8; other characters have it too. */
const C1_CSI = 0x9b;

/**
 * The lines of `run` that may match `patterns`, in order; every line that does match is among them.
 * The run is decoded a piece at a time, its escape sequences stripped, each piece scanned as a whole
 * (`CompiledPatterns.scan`); only the lines a scan hit are sliced out (stripped). When the patterns cannot be scanned that way, every line is returned.
 */
export function candidateLines(
  run: LineRun,
  patterns: CompiledPatterns,
  progress?: Int32Array,
  slot = 0,
): SplitLine[] {
  if (!patterns.scannable) return runLines(run);
  const lines: SplitLine[] = [];
  for (const piece of runPieces(run)) {
    // Patterns match what an agent sees: no escape sequences (none spans a line, so lines stay).
    // Most output has none: a byte search (memchr) spares it a search of the decoded text.
    const decoded = piece.bytes.toString('utf8');
    const text = piece.bytes.includes(ESC) || piece.bytes.includes(C1_CSI) ? stripAnsi(decoded) : decoded;
    const starts = patterns.scan(text, progress, slot) ?? [];
    const ascii = text.length === piece.bytes.length;
    // Outside ASCII, or with escapes stripped, a line's byte offset is found by walking the newlines of text and bytes in step.
    let charAt = 0;
    let byteAt = 0;
    for (const start of starts) {
      if (!ascii) {
        while (charAt < start) {
          charAt = text.indexOf('\n', charAt) + 1;
          byteAt = piece.bytes.indexOf(LF, byteAt) + 1;
        }
      }
      lines.push({
        text: lineText(text, start, text.indexOf('\n', start)),
        truncated: false,
        offset: piece.offset + (ascii ? start : byteAt),
      });
    }
  }
  return lines;
}
