import { z } from 'zod';
import { enableLinearEngine, runsInLinearTime } from '../watch/regex-engine.js';
import { EnvScrub, MIN_SECRET_LENGTH } from './child-env.js';
import { type RedactionRules, Redactor } from './redactor.js';

/**
 * Variables a child does not inherit by default: names that say they hold a credential. Names
 * such as `PATH`, `HOME` or `SSH_AUTH_SOCK` match none of them.
 */
export const DEFAULT_ENV_DENY: readonly string[] = [
  '*_TOKEN',
  '*_SECRET',
  '*_SECRET_KEY',
  '*_SECRET_ACCESS_KEY',
  '*_API_KEY',
  '*_APIKEY',
  '*_PASSWORD',
  '*_PASSWD',
  '*_PRIVATE_KEY',
  '*_CREDENTIALS',
];

/**
 * Redacted by default: common API keys and tokens. Each runs in linear time (V8's linear engine
 * allows a counted repetition up to 16, hence `{16}` followed by `*` for "at least 16").
 */
export const DEFAULT_REDACT_PATTERNS: readonly string[] = [
  // OpenAI, Anthropic and compatible: sk-..., sk-proj-..., sk-ant-...
  '\\bsk-[A-Za-z0-9_-]{16}[A-Za-z0-9_-]*',
  // GitHub tokens and fine-grained personal access tokens.
  '\\bgh[pousr]_[A-Za-z0-9]{16}[A-Za-z0-9]*',
  '\\bgithub_pat_[A-Za-z0-9_]{16}[A-Za-z0-9_]*',
  // Slack.
  '\\bxox[abeoprs]-[A-Za-z0-9-]{10}[A-Za-z0-9-]*',
  // AWS access key ids.
  '\\b(?:AKIA|ASIA)[0-9A-Z]{16}\\b',
  // Google API keys.
  '\\bAIza[0-9A-Za-z_-]{16}[0-9A-Za-z_-]*',
  // Stripe.
  '\\b[rs]k_(?:live|test)_[0-9A-Za-z]{10}[0-9A-Za-z]*',
  // Hugging Face.
  '\\bhf_[A-Za-z0-9]{16}[A-Za-z0-9]*',
  // An HTTP bearer credential (`Authorization: Bearer ...`).
  '\\b[Bb]earer +[A-Za-z0-9._~+/-]{16}[A-Za-z0-9._~+/-]*=*',
  // JSON Web Tokens.
  '\\beyJ[A-Za-z0-9_-]{8}[A-Za-z0-9_-]*\\.[A-Za-z0-9_-]{8}[A-Za-z0-9_-]*\\.[A-Za-z0-9_-]{8}[A-Za-z0-9_-]*',
];

const envGlob = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[^=\0]+$/, 'must be a variable name (with * for any characters), without "="');

const redactPattern = z
  .string()
  .min(1)
  .max(1000)
  .superRefine((source, ctx) => {
    let re: RegExp;
    try {
      re = new RegExp(source);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      ctx.addIssue({ code: 'custom', message: `invalid regex: ${message}` });
      return;
    }
    if (enableLinearEngine() && !runsInLinearTime(source, '')) {
      ctx.addIssue({
        code: 'custom',
        message: `/${source}/ cannot run in linear time (backreferences, lookarounds and counted repetitions over 16 are refused)`,
      });
    } else if (re.test('')) {
      ctx.addIssue({ code: 'custom', message: `/${source}/ matches the empty string` });
    }
  });

/** The `secrets` section of the vigil config. */
export const secretsSchema = z.strictObject({
  /**
   * Variables of vigil's environment its children do not inherit (globs, `*` for any characters,
   * case-insensitive), besides `VIGIL_TOKEN`, which never is. Their values (8 characters or more)
   * are redacted from output. An explicit `env` of a spawn is passed as given.
   */
  envDeny: z
    .array(envGlob)
    .max(1000)
    .default([...DEFAULT_ENV_DENY]),
  /**
   * Regexes whose matches are redacted from output (no flags; each must run in linear time and not
   * match the empty string). Default: `DEFAULT_REDACT_PATTERNS`, common API keys and tokens.
   */
  redact: z
    .array(redactPattern)
    .max(100)
    .default([...DEFAULT_REDACT_PATTERNS]),
  /** Secret values redacted from output wherever they occur (a gateway adds its token). */
  values: z.array(z.string().min(MIN_SECRET_LENGTH).max(10_000)).max(1000).default([]),
});

export type SecretsConfig = z.output<typeof secretsSchema>;

/** A vigil instance's secrets, made once from its config and the environment it was created in. */
export interface InstanceSecrets {
  /** What its children do not inherit. */
  readonly scrub: EnvScrub;
  /** What is redacted: the patterns, the configured values, the values of the denied variables. */
  readonly rules: RedactionRules;
  readonly redactor: Redactor;
}

export function instanceSecrets(
  secrets: SecretsConfig,
  env: NodeJS.ProcessEnv = process.env,
): InstanceSecrets {
  const scrub = new EnvScrub(secrets.envDeny);
  const rules = { patterns: secrets.redact, values: [...secrets.values, ...scrub.secretValues(env)] };
  return { scrub, rules, redactor: new Redactor(rules) };
}
