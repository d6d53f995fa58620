'use strict';
// Where the CLI gets a passphrase: --passphrase-file, one of the environment
// variables below, or a no-echo prompt when stdin is a terminal. Never an
// argument, which other users could read in the process list.

const fs = require('node:fs');
const { spawnSync } = require('node:child_process');

const ENV_VAR = 'CONTAINERARCHIVE_PASSPHRASE';
const FILE_VAR = 'CONTAINERARCHIVE_PASSPHRASE_FILE';
const COMMAND_VAR = 'CONTAINERARCHIVE_PASSPHRASE_COMMAND';
const ALL_VARS = [ENV_VAR, FILE_VAR, COMMAND_VAR];

class PromptAborted extends Error {
  constructor(message, exitCode) {
    super(message);
    this.exitCode = exitCode;
  }
}

/**
 * Reads one line from a TTY `input` in raw mode without echoing it. Handles
 * backspace, Ctrl-U (clear), Ctrl-C (rejects, exit code 130) and Ctrl-D
 * (rejects on an empty line, otherwise ends the line like Enter).
 */
function promptHidden(prompt, input, output) {
  return new Promise((resolve, reject) => {
    const wasRaw = Boolean(input.isRaw);
    let value = '';
    let escape = 0; // 1 after ESC, 2 inside a CSI sequence (arrow keys etc.), which are skipped
    const cleanup = () => {
      input.removeListener('data', onData);
      input.removeListener('end', onEnd);
      input.setRawMode(wasRaw);
      input.pause();
      output.write('\n');
    };
    const onEnd = () => {
      cleanup();
      reject(new PromptAborted('no passphrase entered (input ended)', 12));
    };
    const onData = (data) => {
      const text = typeof data === 'string' ? data : data.toString('utf8');
      for (const ch of text) {
        if (escape === 1) {
          escape = ch === '[' ? 2 : 0;
          continue;
        }
        if (escape === 2) {
          if (ch >= '@' && ch <= '~') escape = 0;
          continue;
        }
        switch (ch) {
          case '\r':
          case '\n':
            cleanup();
            resolve(value);
            return;
          case '\u0003': // Ctrl-C
            cleanup();
            reject(new PromptAborted('cancelled', 130));
            return;
          case '\u0004': // Ctrl-D
            cleanup();
            if (value.length === 0) reject(new PromptAborted('no passphrase entered', 12));
            else resolve(value);
            return;
          case '\u007f': // DEL (backspace on most terminals)
          case '\b':
            value = Array.from(value).slice(0, -1).join('');
            break;
          case '\u0015': // Ctrl-U
            value = '';
            break;
          case '\u001b': // ESC: start of an escape sequence
            escape = 1;
            break;
          default:
            if (ch >= ' ') value += ch; // other control characters are ignored
        }
      }
    };
    output.write(prompt);
    input.setRawMode(true);
    input.on('data', onData);
    input.on('end', onEnd);
    input.resume();
  });
}

/** True when a prompt is possible: stdin is a terminal that supports raw mode. */
function canPrompt(stdin) {
  return Boolean(stdin && stdin.isTTY && typeof stdin.setRawMode === 'function');
}

/** A passphrase source that is set but unusable: exit code 12 (no passphrase), nothing touched. */
class PassphraseSourceError extends Error {
  constructor(message) {
    super(message);
    this.exitCode = 12;
  }
}

/** The file's content without one trailing newline (as `echo x > file` writes it). */
function readPassphraseFile(file, what) {
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new PassphraseSourceError(`cannot read the passphrase file ${file} (${what}): ${err.code || err.message}; check the path and its permissions`);
  }
  const value = text.replace(/\r?\n$/, '');
  if (value.length === 0) throw new PassphraseSourceError(`the passphrase file ${file} (${what}) is empty; write the passphrase into it`);
  return value;
}

/**
 * Runs the command through the shell and takes its stdout, without one trailing
 * newline, as the passphrase (like restic's --password-command). Its stdin is
 * closed, so it never eats data piped to `backup -`; its stderr is ours, so a
 * password manager can explain itself. It must exit 0.
 */
function runPassphraseCommand(command) {
  const result = spawnSync(process.platform === 'win32' ? 'cmd.exe' : '/bin/sh', process.platform === 'win32' ? ['/d', '/s', '/c', command] : ['-c', command], {
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
    maxBuffer: 1 << 20,
    windowsHide: true,
  });
  const how = result.error
    ? result.error.message
    : result.status !== 0
      ? result.signal ? `killed by ${result.signal}` : `exit code ${result.status}`
      : null;
  if (how !== null) throw new PassphraseSourceError(`${COMMAND_VAR} (${command}) failed: ${how}; run it by hand to see why`);
  const value = result.stdout.replace(/\r?\n$/, '');
  if (value.length === 0) throw new PassphraseSourceError(`${COMMAND_VAR} (${command}) printed nothing; it must print the passphrase on stdout`);
  return value;
}

/**
 * The passphrase from the non-interactive sources, as { passphrase, source },
 * or undefined when none is set. --passphrase-file wins over the environment;
 * of the environment variables (empty ones count as unset) at most one may be
 * set, because silently preferring one would hide a mistake.
 */
function passphraseFromSources(env, passphraseFile) {
  if (passphraseFile !== undefined) {
    return { passphrase: readPassphraseFile(passphraseFile, '--passphrase-file'), source: `--passphrase-file ${passphraseFile}` };
  }
  const set = ALL_VARS.filter((name) => env[name] !== undefined && env[name] !== '');
  if (set.length > 1) {
    throw new PassphraseSourceError(`${set.join(' and ')} are all set; set only one passphrase source`);
  }
  switch (set[0]) {
    case ENV_VAR:
      return { passphrase: env[ENV_VAR], source: ENV_VAR };
    case FILE_VAR:
      return { passphrase: readPassphraseFile(env[FILE_VAR], FILE_VAR), source: `${FILE_VAR} (${env[FILE_VAR]})` };
    case COMMAND_VAR:
      return { passphrase: runPassphraseCommand(env[COMMAND_VAR]), source: COMMAND_VAR };
    default:
      return undefined;
  }
}

/** One line for help texts and error messages. */
const SOURCES_HINT = `set ${ENV_VAR}, ${FILE_VAR} or ${COMMAND_VAR}, or pass --passphrase-file FILE`;

module.exports = {
  ENV_VAR,
  FILE_VAR,
  COMMAND_VAR,
  SOURCES_HINT,
  PromptAborted,
  PassphraseSourceError,
  promptHidden,
  canPrompt,
  passphraseFromSources,
  readPassphraseFile,
};
