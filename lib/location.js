'use strict';
// Where a repository lives, as the native engine needs it: a local path, or
// an `s3://bucket/prefix` URL with its connection settings. Settings that
// are not given come from the standard AWS environment variables, read here
// (not in Rust) so that what the engine uses is exactly what this function
// returns. Credentials never appear in a message this module makes.

const STORAGE_OPTIONS = ['endpoint', 'region', 'accessKeyId', 'secretAccessKey', 'sessionToken', 'forcePathStyle', 'concurrency', 'timeoutMs', 'retries'];

/** The environment variable each field falls back to (the AWS SDKs' names). */
const ENV = {
  endpoint: ['AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL'],
  region: ['AWS_REGION', 'AWS_DEFAULT_REGION'],
  accessKeyId: ['AWS_ACCESS_KEY_ID'],
  secretAccessKey: ['AWS_SECRET_ACCESS_KEY'],
  sessionToken: ['AWS_SESSION_TOKEN'],
};

const isS3Url = (location) => typeof location === 'string' && /^s3:\/\//i.test(location);

/**
 * The native form of `options.storage`, `options.cacheDir` and
 * `options.cache` for `location`, or undefined for a local path.
 * `invalid(message)` makes the caller's ERR_INVALID_ARGUMENT.
 */
function storageSpec(location, options, invalid, env = process.env) {
  const { storage, cacheDir, cache } = options;
  if (!isS3Url(location)) {
    for (const [name, value] of [['storage', storage], ['cacheDir', cacheDir], ['cache', cache]]) {
      if (value !== undefined) throw invalid(`options.${name} applies only to an s3:// repository; this one is a local path`);
    }
    return undefined;
  }
  if (!location.startsWith('s3://')) throw invalid('write the scheme of an S3 location in lower case: s3://bucket/prefix');
  const given = storage ?? {};
  if (given === null || typeof given !== 'object' || Array.isArray(given)) throw invalid('options.storage must be an object');
  for (const key of Object.keys(given)) {
    if (!STORAGE_OPTIONS.includes(key)) throw invalid(`options.storage.${key} is not a known option; known: ${STORAGE_OPTIONS.join(', ')}`);
  }
  const spec = {};
  for (const [field, names] of Object.entries(ENV)) {
    const value = given[field] ?? names.map((n) => env[n]).find((v) => typeof v === 'string' && v !== '');
    if (value === undefined) continue;
    if (typeof value !== 'string' || value === '') throw invalid(`options.storage.${field} must be a non-empty string`);
    spec[field] = value;
  }
  if (given.forcePathStyle !== undefined) {
    if (typeof given.forcePathStyle !== 'boolean') throw invalid('options.storage.forcePathStyle must be a boolean');
    spec.forcePathStyle = given.forcePathStyle;
  }
  if (given.concurrency !== undefined) {
    if (!Number.isInteger(given.concurrency) || given.concurrency < 1 || given.concurrency > 256) {
      throw invalid('options.storage.concurrency must be an integer from 1 to 256');
    }
    spec.concurrency = given.concurrency;
  }
  if (given.timeoutMs !== undefined) {
    if (!Number.isInteger(given.timeoutMs) || given.timeoutMs < 100 || given.timeoutMs > 3600000) {
      throw invalid('options.storage.timeoutMs must be an integer from 100 to 3600000 (milliseconds per request attempt)');
    }
    spec.timeoutMs = given.timeoutMs;
  }
  if (given.retries !== undefined) {
    if (!Number.isInteger(given.retries) || given.retries < 0 || given.retries > 100) {
      throw invalid('options.storage.retries must be an integer from 0 to 100');
    }
    spec.retries = given.retries;
  }
  if (spec.accessKeyId === undefined || spec.secretAccessKey === undefined) {
    throw invalid('no credentials for the S3 repository: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or pass options.storage.accessKeyId and options.storage.secretAccessKey');
  }
  if (cache !== undefined && typeof cache !== 'boolean') throw invalid('options.cache must be a boolean (false turns the metadata cache off)');
  if (cacheDir !== undefined && (typeof cacheDir !== 'string' || cacheDir === '')) throw invalid('options.cacheDir must be a non-empty path');
  if (cache === false && cacheDir !== undefined) throw invalid('options.cacheDir and cache: false contradict each other; pass one of them');
  spec.cache = cache !== false;
  if (cacheDir !== undefined) spec.cacheDir = cacheDir;
  return spec;
}

module.exports = { storageSpec, isS3Url, STORAGE_OPTIONS, ENV };
