import { z } from 'zod';

/** The shortest token accepted. */
export const MIN_TOKEN_LENGTH = 16;

/** RFC 6750 `b64token`: what a client can send as `Authorization: Bearer <token>` unchanged. */
const TOKEN_CHAR = /[A-Za-z0-9\-._~+/]/;

/**
 * What makes `token` unusable as a bearer token, or undefined: too short, or a character outside
 * `A-Z a-z 0-9 - . _ ~ + /` (then `=` padding at the end). A space or a non-ASCII character could
 * never match a header, so such a token would be accepted at start and refuse every request.
 */
export function bearerTokenProblem(token: string): string | undefined {
  const chars = [...token];
  const padding = chars.length - chars.findLastIndex((char) => char !== '=') - 1;
  // Padding adds no secret: the length that counts is what comes before it.
  if (chars.length - padding < MIN_TOKEN_LENGTH) {
    return `must be at least ${MIN_TOKEN_LENGTH} characters before any = padding, got ${chars.length - padding}`;
  }
  const bad = chars.findIndex((char, index) => index < chars.length - padding && !TOKEN_CHAR.test(char));
  if (bad < 0) return undefined;
  const char = chars[bad]!;
  const code = `U+${char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
  const shown = char === ' ' ? 'a space' : /[\x21-\x7e]/.test(char) ? `"${char}"` : code;
  return `has ${shown} at position ${bad + 1}: a bearer token is made of A-Z a-z 0-9 - . _ ~ + / (then = padding at the end), to fit an Authorization header`;
}

/** A bearer token option: the message of a refusal says what is wrong with it. */
export const bearerTokenSchema = z.string().superRefine((token, ctx) => {
  const problem = bearerTokenProblem(token);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
});
