/**
 * What configuration checks report. A problem stops the daemon; a warning does not.
 * Every problem names the key, the value as written (never the content of a secret file:
 * secrets live in files, and only their paths are ever shown) and a fix a person can apply.
 */

export interface Problem {
  /** The property key, or a file label ("bitbucket.properties", "data/setup.json") for file-level problems. */
  key: string;
  /**
   * The value as written in the file; undefined when the key is not set. (A file check on a
   * key left at its default shows the default path, so the person knows which file is meant.)
   */
  value?: string;
  message: string;
  fix: string;
  /** 1-based line in bitbucket.properties, when the problem comes from a line. */
  line?: number;
}

export interface Warning {
  key: string;
  message: string;
  fix?: string;
  line?: number;
}

/** An invalid value: what is wrong and how to fix it. Returned (not thrown) by the value parsers. */
export class Invalid {
  constructor(
    readonly message: string,
    readonly fix: string,
  ) {}
}

export function isInvalid(x: unknown): x is Invalid {
  return x instanceof Invalid;
}
