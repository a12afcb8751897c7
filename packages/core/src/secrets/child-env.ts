/** Variables of this process a child never inherits, whatever the config says: vigil's own secrets. */
export const SECRET_VARIABLES: ReadonlySet<string> = new Set(['VIGIL_TOKEN']);

/** A secret value shorter than this is not redacted: it would redact ordinary words and numbers. */
export const MIN_SECRET_LENGTH = 8;

/**
 * Which variables of this process its children do not inherit: vigil's own secrets and the names
 * matching `secrets.envDeny` (globs, `*` for any characters, case-insensitive). Their values are
 * what vigil redacts from output besides its patterns.
 */
export class EnvScrub {
  readonly #deny: RegExp | undefined;

  constructor(globs: readonly string[] = []) {
    this.#deny = globs.length === 0 ? undefined : new RegExp(`^(?:${globs.map(globSource).join('|')})$`, 'i');
  }

  denies(name: string): boolean {
    return SECRET_VARIABLES.has(name) || (this.#deny?.test(name) ?? false);
  }

  /** `process.env` without the denied variables, then `env` over it (a caller's explicit choice stays). */
  childEnv(env: Readonly<Record<string, string>> | undefined): NodeJS.ProcessEnv {
    const inherited: NodeJS.ProcessEnv = {};
    for (const [name, value] of Object.entries(process.env)) {
      if (!this.denies(name)) inherited[name] = value;
    }
    return { ...inherited, ...env };
  }

  /** The values of the denied variables of `env`, those long enough to redact. */
  secretValues(env: NodeJS.ProcessEnv = process.env): string[] {
    return Object.entries(env).flatMap(([name, value]) =>
      value !== undefined && value.length >= MIN_SECRET_LENGTH && this.denies(name) ? [value] : [],
    );
  }
}

/** Denies vigil's own secrets only: for children started without a config. */
export const VIGIL_SECRETS_ONLY = new EnvScrub();

/** A glob of variable names as a regex source: `*` is any characters, everything else literal. */
function globSource(glob: string): string {
  return glob
    .split('*')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'))
    .join('.*');
}
