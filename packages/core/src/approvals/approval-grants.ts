/** What a grant needs of an approval: the command and pattern key it was asked for, and its id. */
export interface GrantSource {
  readonly approvalId: string;
  readonly command: string;
  readonly patternKey?: string;
}

/**
 * The "approve for this session" answers of one session: each approves at once every later request
 * with the same command, or with the same pattern key when it had one. They last as long as the
 * session (the journal keeps them across a restart).
 */
export class ApprovalGrants {
  /** Command → the approval that granted it. */
  readonly #commands = new Map<string, string>();
  /** Pattern key → the approval that granted it. */
  readonly #patternKeys = new Map<string, string>();

  /** Grants what `source` was asked for (a grant already made stays with its first approval). */
  add(source: GrantSource): void {
    if (!this.#commands.has(source.command)) this.#commands.set(source.command, source.approvalId);
    const { patternKey } = source;
    if (patternKey !== undefined && !this.#patternKeys.has(patternKey)) {
      this.#patternKeys.set(patternKey, source.approvalId);
    }
  }

  /** The id of the approval whose grant covers a request, or undefined when it must ask. */
  match(request: { readonly command: string; readonly patternKey?: string }): string | undefined {
    const byCommand = this.#commands.get(request.command);
    if (byCommand !== undefined) return byCommand;
    return request.patternKey === undefined ? undefined : this.#patternKeys.get(request.patternKey);
  }
}
