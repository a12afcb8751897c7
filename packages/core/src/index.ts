export type { VigilErrorCode, VigilErrorOptions } from './errors.js';
export { abortError, isVigilErrorCode, toVigilError, VigilError } from './errors.js';
export { assertSessionId, newId } from './ids.js';
export type { PoolOptions, PoolOptionsInput, VigilConfig, VigilConfigInput } from './options.js';
export { configSchema, formatIssues, parseConfig, parseWith, poolOptionsSchema } from './options.js';
