'use strict';
// Where the CLI gets a passphrase: the CONTAINERARCHIVE_PASSPHRASE environment
// variable, or a no-echo prompt when stdin is a terminal. Never an argument.

const ENV_VAR = 'CONTAINERARCHIVE_PASSPHRASE';

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
      reject(new PromptAborted('no passphrase entered (input ended)', 2));
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
            if (value.length === 0) reject(new PromptAborted('no passphrase entered', 2));
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

module.exports = { ENV_VAR, PromptAborted, promptHidden, canPrompt };
