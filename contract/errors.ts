// ---------------------------------------------------------------------------------------------
// The one error vocabulary of the project. Every error we throw on purpose is a CodedError: a
// stable `code` (callers branch on it, metrics use it as a label) and, when it translates a
// lower-level error, that error as `cause`. No dependencies: both halves import this file.

/** Base of every error the project throws on purpose. */
export class CodedError<C extends string = string> extends Error {
  override readonly name: string = "CodedError";
  constructor(
    readonly code: C,
    message: string,
    options?: { readonly cause?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
  }
}

/**
 * A configuration value or option that cannot be used: an env variable, a CLI flag, an option of
 * a runtime class. The message names the setting and what is allowed. One code for all of them.
 */
export class ConfigError extends CodedError<"BAD_OPTION"> {
  override readonly name = "ConfigError";
  constructor(message: string, options?: { readonly cause?: unknown }) {
    super("BAD_OPTION", message, options);
  }
}
