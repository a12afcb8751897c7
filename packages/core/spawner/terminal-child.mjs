/**
 * A child of the spawner that runs in a pseudo-terminal (`pty: true`), through `node-pty`: the
 * spawner holds the terminal's master side, copies what the terminal shows to the child's spool and
 * writes to its keyboard. It looks to `spawner-process.mjs` like a `ChildProcess`: `pid`, `stdin`
 * (`write`, `end`, `destroy`), and `exit` once the child ended and its output is in the spool.
 */
import { EventEmitter } from 'node:events';
import { closeSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants } from 'node:os';

/** The terminal's end-of-file character (VEOF, ^D): what `end` types. */
const EOF = '\x04';
/** A write the terminal refused (its input queue is full) is tried again after this, doubling up to the cap. */
const RETRY_MS = 1;
const RETRY_MAX_MS = 50;

/** @type {typeof import('node-pty') | undefined} */
let nodePty;

/**
 * Loaded at the first terminal: a vigil that never starts one never loads the native module, and
 * runs without it (an optional dependency, compiled at install where no prebuilt binary fits).
 */
function loadNodePty() {
  try {
    nodePty ??= createRequire(import.meta.url)('node-pty');
  } catch (error) {
    throw new Error(
      `pty: true needs node-pty (an optional dependency of @vigil/core), which cannot be loaded: ${error.message}`,
    );
  }
  return nodePty;
}

/** @param {number} signal */
function signalName(signal) {
  return Object.entries(constants.signals).find(([, number]) => number === signal)?.[0] ?? null;
}

/**
 * Writes to the terminal's master descriptor without ever blocking this process: it is
 * non-blocking, so a write the child does not read is refused (EAGAIN) and tried again later.
 * Each write's callback runs once the terminal took all of it, or with the error that ended it.
 */
class TerminalInput {
  /** @type {{ buffer: Buffer, offset: number, callback: (error?: Error | null) => void }[]} */
  #queue = [];
  #fd;
  #retryMs = RETRY_MS;
  /** @type {NodeJS.Timeout | undefined} */
  #retry;
  /** The last byte taken, to know whether a line is pending when EOF is typed. */
  #lineOpen = false;
  writable = true;

  /** @param {number} fd */
  constructor(fd) {
    this.#fd = fd;
  }

  /**
   * @param {string | Uint8Array} data
   * @param {(error?: Error | null) => void} callback
   */
  write(data, callback) {
    if (!this.writable) {
      callback(new Error('The process has ended or its stdin is closed'));
      return;
    }
    this.#push(Buffer.from(data), callback);
  }

  /**
   * Types EOF after what is pending: ^D, twice when a line is open (the first ends that line, as it
   * would at a keyboard). A program that reads the terminal raw gets the characters as they are.
   */
  end() {
    if (!this.writable) return;
    const last = this.#queue.at(-1)?.buffer;
    const lineOpen = last === undefined ? this.#lineOpen : !endsLine(last);
    this.#push(Buffer.from(lineOpen ? EOF + EOF : EOF), () => {});
    this.writable = false;
  }

  /** Drops what the child has not taken (the terminal stays open); pending writes fail with `why`. */
  destroy(why = 'stdin is closed') {
    this.writable = false;
    clearTimeout(this.#retry);
    this.#retry = undefined;
    const queue = this.#queue;
    this.#queue = [];
    for (const task of queue) task.callback(new Error(why));
  }

  /**
   * @param {Buffer} buffer
   * @param {(error?: Error | null) => void} callback
   */
  #push(buffer, callback) {
    if (buffer.byteLength === 0) {
      callback(null);
      return;
    }
    this.#queue.push({ buffer, offset: 0, callback });
    if (this.#queue.length === 1 && this.#retry === undefined) this.#pump();
  }

  #pump() {
    this.#retry = undefined;
    while (this.#queue.length > 0) {
      const task = this.#queue[0];
      let written;
      try {
        written = writeSync(this.#fd, task.buffer, task.offset);
      } catch (error) {
        if (error.code === 'EAGAIN') {
          this.#retry = setTimeout(() => this.#pump(), this.#retryMs);
          this.#retryMs = Math.min(this.#retryMs * 2, RETRY_MAX_MS);
          return;
        }
        this.destroy(`Writing to the terminal failed: ${error.message}`);
        return;
      }
      this.#retryMs = RETRY_MS;
      task.offset += written;
      if (task.offset < task.buffer.byteLength) continue;
      this.#queue.shift();
      this.#lineOpen = !endsLine(task.buffer);
      task.callback(null);
    }
  }
}

/** @param {Buffer} buffer */
function endsLine(buffer) {
  const last = buffer.at(-1);
  return last === 0x0a || last === 0x0d;
}

/**
 * One command in its own terminal. `node-pty` makes it the leader of a new session and process
 * group (pgid = pid), like the spawner's other children.
 */
export class TerminalChild extends EventEmitter {
  /** @type {number} */
  pid;
  /** @type {TerminalInput} */
  stdin;
  #terminal;
  #output;

  /**
   * Starts `file` with `args` in a terminal of `size`; throws when it cannot (no such file: the
   * child exits 1 instead, as with a shell). Takes ownership of `output`, an `O_APPEND` descriptor.
   * @param {string} file
   * @param {string[]} args
   * @param {{ cwd?: string, env: Record<string, string>, size: { cols: number, rows: number }, output: number }} options
   */
  constructor(file, args, options) {
    super();
    this.#output = options.output;
    const terminal = loadNodePty().spawn(file, args, {
      name: options.env.TERM ?? 'xterm-256color',
      cols: options.size.cols,
      rows: options.size.rows,
      cwd: options.cwd ?? process.cwd(),
      env: options.env,
      // Bytes as the child wrote them: a character split between two reads stays whole in the spool.
      encoding: null,
    });
    this.#terminal = terminal;
    this.pid = terminal.pid;
    this.stdin = new TerminalInput(/** @type {{ fd: number }} */ (/** @type {unknown} */ (terminal)).fd);
    terminal.onData((data) => this.#copy(data));
    // Before the master descriptor is closed: no write may reach a number reused since.
    /** @type {{ on(event: 'close', listener: () => void): void }} */ (/** @type {unknown} */ (terminal)).on(
      'close',
      () => this.stdin.destroy('The process has ended or its stdin is closed'),
    );
    // node-pty reports the exit once the terminal's output was read to its end (or 200 ms later).
    terminal.onExit(({ exitCode, signal }) => {
      this.stdin.destroy('The process has ended or its stdin is closed');
      closeSync(this.#output);
      const name = signal ? signalName(signal) : null;
      this.emit('exit', name === null ? exitCode : null, name);
    });
  }

  /** @param {number} cols @param {number} rows */
  resize(cols, rows) {
    try {
      this.#terminal.resize(cols, rows);
    } catch {
      // The terminal closed: the child ended, and its exit is on its way.
    }
  }

  /** @param {Buffer | string} data */
  #copy(data) {
    const buffer = typeof data === 'string' ? Buffer.from(data) : data;
    try {
      for (let offset = 0; offset < buffer.byteLength; ) {
        offset += writeSync(this.#output, buffer, offset);
      }
    } catch (error) {
      process.stderr.write(`vigil spawner: cannot append to a terminal's spool: ${error.message}\n`);
    }
  }
}
