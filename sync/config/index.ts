/** The configuration module's public surface, for sync/main.ts and the other daemon modules. */
export { loadConfig, validateText, type LoadResult } from "./load";
export { type MirrorConfig, type LogLevel, type ServeAuth, propertiesPath } from "./schema";
export { type Problem, type Warning } from "./problems";
export { runCheck, formatProblems, formatWarnings, summarize } from "./check";
export { applySetup, inspectSetup, decideSetup, setupRecordPath, type SetupRecord, type SetupDecision } from "./setupRecord";
export { KEYS, KEY_LIST, renderKeyTable, minimalExample, type KeySpec } from "./keys";
export { parseDuration, formatDuration } from "./duration";
export { type HostKey, type ListenAddress, type SshBase, formatListen } from "./values";
