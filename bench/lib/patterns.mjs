/** The ten watch patterns the output scenarios match: 5 substrings, 5 regexes, one with a flag. */
export const TEN_PATTERNS = [
  'FATAL',
  'panic:',
  'Traceback (most recent call last)',
  'OutOfMemoryError',
  'Segmentation fault',
  { regex: 'ERROR\\s+\\[\\d{3}\\]' },
  { regex: 'timed? ?out after \\d+ ?ms', flags: 'i' },
  { regex: 'exit(ed)? with code [1-9]' },
  { regex: '\\bFAIL(ED)?\\b' },
  { regex: 'assert(ion)? failed' },
];
