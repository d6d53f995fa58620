'use strict';
// `signal: AbortSignal` on long operations, by Node's own conventions: an
// aborted call rejects with an error named 'AbortError', code 'ABORT_ERR',
// whose `cause` is the signal's reason (what fs.readFile, fetch and
// stream.pipeline do).

class AbortError extends Error {
  constructor(reason) {
    super('The operation was aborted', { cause: reason });
    this.name = 'AbortError';
    this.code = 'ABORT_ERR';
  }
}

/** The signal, checked; `invalid(message)` makes the argument error. */
function checkSignal(signal, invalid) {
  if (signal === undefined) return undefined;
  const looksLikeOne =
    signal !== null &&
    typeof signal === 'object' &&
    typeof signal.aborted === 'boolean' &&
    typeof signal.addEventListener === 'function' &&
    typeof signal.removeEventListener === 'function';
  if (!looksLikeOne) throw invalid('signal must be an AbortSignal (e.g. AbortSignal.timeout(60_000) or an AbortController\'s signal)');
  return signal;
}

/**
 * Runs `run()` (a promise-returning call into the engine) under `signal`:
 * an abort calls `onAbort()` (which cancels the engine's side) and, once
 * the call settles, makes its rejection an AbortError. A call that already
 * finished its work resolves as usual: a prune past the point where
 * stopping would leave work half done completes.
 */
async function underSignal(signal, onAbort, run) {
  if (!signal) return run();
  if (signal.aborted) throw new AbortError(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    return await run();
  } catch (err) {
    if (signal.aborted) throw new AbortError(signal.reason);
    throw err;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

module.exports = { AbortError, checkSignal, underSignal };
