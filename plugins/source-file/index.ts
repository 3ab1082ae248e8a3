/**
 * `file` source (issue 13): LIS and physical-exam systems that drop HL7 files
 * into a directory. See README.md beside this file for the layout and the
 * guarantees; in short:
 *
 * - a file matching `pattern`, seen with the same size and mtime at two
 *   polls in a row, is claimed by renaming it into this engine's work area
 *   (`dir/.work/<instance>/`); the rename decides who owns it;
 * - its messages go through `ctx.submitBlock` (loose messages, CR/LF/CRLF,
 *   FHS/BHS batches); after each outcome one line is appended (and fsynced)
 *   to a progress log under `<dataDir>/sources/<name>/progress/`;
 * - all committed (accepted/duplicate): the file moves to `dir/done/`; any
 *   refused (rejected): to `dir/error/` with a `.err` text; a `failed`
 *   outcome (a passing reason) leaves it claimed and a later poll resumes it
 *   from that message on; so does a restart after a crash.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { access, link, lstat, open, readdir, readFile, rename, rm, truncate, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { buildBatchAckEnvelope, durationSchema, parseDuration, splitBlock, untilResumed, type IngestOutcome, type RunningSource, type SourceContext, type SourceDefinition, type Submit } from '../../core/sdk.js';
import { dirProblem, makeDirs, makeDirsUnder, probeDir } from './dirs.js';
import { fileSourceErrors } from './errors.js';

export interface FileSourceConfig {
  name: string;
  type: 'file';
  dir: string;
  pattern?: string;
  charset?: string;
  poll?: number | string;
  ack?: boolean;
  noRoute?: 'AA' | 'AR';
  invalidBytes?: 'reject' | 'replace';
  multiMessageBlocks?: 'split' | 'reject';
  maxFileBytes?: number;
}

export const DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024;

/** One line of a progress log: a message's outcome, recorded after it. */
interface ProgressRecord {
  /** Message index in the file (0-based, batches flattened). */
  i: number;
  /** accepted | duplicate | rejected (failed outcomes are not recorded: the message is offered again). */
  s: 'accepted' | 'duplicate' | 'rejected';
  /** MSH-10 when readable. */
  id?: string;
  /** Code and reason of a refused message (PHI-free by the outcome's contract). */
  c?: string;
  r?: string;
  /** The message's ACK payload, base64 (only with `ack: true`). */
  a?: string;
}

/** `*` any run of characters, `?` one character, everything else literal; matched on the whole file name. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (const ch of glob) {
    if (ch === '*') re += '.*';
    else if (ch === '?') re += '.';
    else re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 's');
}

/** `lab.hl7` -> `lab-1.hl7`, `lab-2.hl7`... for name clashes in done/error/ack. */
function suffixed(name: string, n: number): string {
  if (n === 0) return name;
  const ext = path.extname(name);
  const stem = ext && ext !== name ? name.slice(0, -ext.length) : name;
  return `${stem}-${n}${ext && ext !== name ? ext : ''}`;
}

/** Links `src` into `dir` under `name` (or a suffixed name when taken), never overwriting; returns the name used. */
async function linkUnique(src: string, dir: string, name: string): Promise<string> {
  for (let n = 0; n < 10_000; n++) {
    const candidate = suffixed(name, n);
    try {
      await link(src, path.join(dir, candidate));
      return candidate;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') continue;
      if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EXDEV' || code === 'EMLINK') {
        // No hard links here: rename when the name is free (a small window against another writer).
        try {
          await lstat(path.join(dir, candidate));
          continue;
        } catch {
          await rename(src, path.join(dir, candidate));
          return candidate;
        }
      }
      throw e;
    }
  }
  throw new Error(`no free name for ${name} in ${dir}`);
}

/** Writes `data` to `dir/name` (or a suffixed name) atomically: a temporary file, fsynced, then linked in. */
async function writeUnique(dir: string, name: string, data: Buffer | string): Promise<string> {
  const tmp = path.join(dir, `.${randomBytes(8).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(data);
    await fh.datasync();
  } finally {
    await fh.close();
  }
  try {
    const used = await linkUnique(tmp, dir, name);
    return used;
  } finally {
    await rm(tmp, { force: true });
  }
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

/** How long the start-up directory checks may take before the start is refused. */
const START_CHECK_MS = 8000;

/** A claimed file's name: 16 hex characters, a dot, then the name it was dropped under. */
const CLAIM_PREFIX = 17;

class FileSource implements RunningSource {
  readonly #ctx: SourceContext;
  readonly #cfg: FileSourceConfig;
  readonly #name: string;
  readonly #dir: string;
  readonly #done: string;
  readonly #error: string;
  readonly #ack: string;
  readonly #work: string;
  readonly #progressDir: string;
  readonly #match: RegExp;
  readonly #pollMs: number;
  readonly #maxBytes: number;
  readonly #stop = new AbortController();
  /** Size and mtime of each candidate at the previous poll: a file is claimed once they stop changing. */
  #seen = new Map<string, string>();
  #loop: Promise<void> = Promise.resolve();
  #closing = false;
  #problem: string | undefined;
  /** Files moved; passing failures; messages skipped on resume (recorded before); duplicate answers. */
  #counts = { done: 0, error: 0, retries: 0, resumedPast: 0, duplicates: 0 };

  constructor(ctx: SourceContext, cfg: FileSourceConfig, instance: string, stateDir: string) {
    this.#ctx = ctx;
    this.#cfg = cfg;
    this.#name = cfg.name;
    this.#dir = path.resolve(ctx.baseDir, cfg.dir);
    this.#done = path.join(this.#dir, 'done');
    this.#error = path.join(this.#dir, 'error');
    this.#ack = path.join(this.#dir, 'ack');
    this.#work = path.join(this.#dir, '.work', instance);
    this.#progressDir = path.join(stateDir, 'progress');
    this.#match = globToRegExp(cfg.pattern ?? '*.hl7');
    this.#pollMs = Math.max(10, parseDuration(cfg.poll, 2000));
    this.#maxBytes = cfg.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  }

  get workDir(): string {
    return this.#work;
  }

  get dirs(): string[] {
    return [this.#dir, this.#done, this.#error, this.#ack, this.#work, this.#progressDir];
  }

  start(): void {
    const onAbort = () => this.#stopNow();
    this.#ctx.signal.addEventListener('abort', onAbort, { once: true });
    this.#loop = this.#run().catch((e: unknown) => {
      this.#problem = `poll loop stopped: ${(e as Error).message}`;
      this.#ctx.log.error({ err: (e as Error).message }, 'file source stopped');
    });
  }

  #stopNow(): void {
    this.#closing = true;
    this.#stop.abort();
  }

  async close(graceMs: number): Promise<void> {
    this.#stopNow();
    let t: NodeJS.Timeout | undefined;
    await Promise.race([this.#loop, new Promise<void>((r) => (t = setTimeout(r, graceMs)))]);
    clearTimeout(t);
  }

  health(): { live: boolean; ready: boolean; detail?: string; info?: Record<string, unknown> } {
    // A directory the source cannot use is neither live nor ready: /healthz and /readyz both fail and name it.
    const ok = this.#problem === undefined;
    return {
      live: ok,
      ready: ok,
      ...(this.#problem ? { detail: this.#problem } : {}),
      info: { dir: this.#dir, ...this.#counts },
    };
  }

  async #run(): Promise<void> {
    while (!this.#closing) {
      try {
        await this.#pollOnce();
      } catch (e) {
        // The directory went away or became unwritable while a file was in hand: say so in health, try again next poll.
        const code = (e as NodeJS.ErrnoException).code ?? 'error';
        this.#problem = `directory ${this.#dir} unusable (${code})`;
        this.#ctx.log.error({ code, err: (e as Error).message }, 'file source poll failed');
      }
      await sleep(this.#pollMs, this.#stop.signal);
    }
  }

  async #pollOnce(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.#dir);
      await access(this.#dir, fsc.R_OK | fsc.W_OK | fsc.X_OK);
      // Below the watched directory only: one an operator removed is reported, not made again.
      for (const d of [this.#done, this.#error, this.#ack, this.#work]) await makeDirsUnder(this.#dir, d, 0o700);
      if (this.#problem) this.#ctx.log.info('directory usable again');
      this.#problem = undefined;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'error';
      const detail = `directory ${this.#dir} unusable (${code})`;
      if (this.#problem !== detail) this.#ctx.log.error({ code }, 'file source directory unusable');
      this.#problem = detail;
      return;
    }
    // Files this engine claimed before (a failed message, a restart after a crash) come first, oldest claim first.
    for (const claimed of (await readdir(this.#work)).sort()) {
      if (this.#closing || this.#ctx.flow.paused) return;
      if (claimed.startsWith('.') || claimed.length <= CLAIM_PREFIX) continue;
      const complete = await this.#process(claimed);
      if (!complete) return; // a passing failure: try again at the next poll, keep the order
    }
    // New files: stable (same size and mtime as at the previous poll), oldest first.
    const seen = new Map<string, string>();
    const ready: { name: string; mtime: number }[] = [];
    for (const name of names) {
      if (name.startsWith('.') || !this.#match.test(name)) continue;
      let st;
      try {
        st = await lstat(path.join(this.#dir, name));
      } catch {
        continue; // gone (another engine claimed it)
      }
      if (!st.isFile()) continue;
      const sig = `${st.size}:${st.mtimeMs}`;
      seen.set(name, sig);
      if (this.#seen.get(name) === sig) ready.push({ name, mtime: st.mtimeMs });
    }
    this.#seen = seen;
    ready.sort((a, b) => a.mtime - b.mtime || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const { name } of ready) {
      if (this.#closing || this.#ctx.flow.paused) return;
      // 12 hex digits of the time, then 4 random ones: claimed names sort in claim order.
      const claimed = `${Date.now().toString(16).padStart(12, '0').slice(-12)}${randomBytes(2).toString('hex')}.${name}`;
      try {
        await rename(path.join(this.#dir, name), path.join(this.#work, claimed));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // another engine won the rename
        throw e;
      }
      this.#seen.delete(name);
      const complete = await this.#process(claimed);
      if (!complete) return;
    }
  }

  #progressFile(claimed: string): string {
    return path.join(this.#progressDir, `${claimed}.log`);
  }

  /** The records of a claimed file; a torn last line (a crash in mid-write) is cut off so appends stay whole. */
  async #loadProgress(claimed: string): Promise<Map<number, ProgressRecord>> {
    const file = this.#progressFile(claimed);
    const done = new Map<number, ProgressRecord>();
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      return done;
    }
    let good = 0;
    for (let start = 0; start < text.length; ) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) break;
      try {
        const r = JSON.parse(text.slice(start, nl)) as ProgressRecord;
        if (typeof r.i !== 'number') break;
        done.set(r.i, r);
      } catch {
        break;
      }
      start = nl + 1;
      good = start;
    }
    if (good < text.length) await truncate(file, Buffer.byteLength(text.slice(0, good)));
    return done;
  }

  /** Processes one claimed file; true when it left the work area (done or error), false to retry later. */
  async #process(claimed: string): Promise<boolean> {
    const original = claimed.slice(CLAIM_PREFIX);
    const claimedPath = path.join(this.#work, claimed);
    const log = this.#ctx.log.child({ claim: claimed.slice(0, 16) });
    let bytes: Buffer;
    // No symlink followed, no FIFO waited on: a file swapped between the check and the claim is refused below.
    let fh: FileHandle;
    try {
      fh = await open(claimedPath, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ELOOP') throw e;
      await this.#finish(claimed, original, { notRegular: true });
      log.warn('claimed entry is a symbolic link: moved to error');
      return true;
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) {
        await this.#finish(claimed, original, { notRegular: true });
        log.warn('claimed entry is not a regular file: moved to error');
        return true;
      }
      if (st.size > this.#maxBytes) {
        await this.#finish(claimed, original, { tooLarge: st.size });
        log.warn({ bytes: st.size, maxFileBytes: this.#maxBytes }, 'file over maxFileBytes moved to error');
        return true;
      }
      bytes = Buffer.allocUnsafe(st.size);
      let got = 0;
      while (got < st.size) {
        const { bytesRead } = await fh.read(bytes, got, st.size - got, got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      bytes = bytes.subarray(0, got);
    } finally {
      await fh.close();
    }
    if (bytes.every((b) => b <= 0x20)) {
      await this.#finish(claimed, original, { empty: true });
      log.warn('empty file moved to error');
      return true;
    }

    const records = await this.#loadProgress(claimed);
    await makeDirs(this.#progressDir, 0o700);
    const plog: FileHandle = await open(this.#progressFile(claimed), 'a', 0o600);
    let stopped: IngestOutcome | undefined;
    let skipped = false;
    let total = 0;
    // This pass only: messages skipped as recorded before (a resume), and duplicate answers.
    let resumedPast = 0;
    let duplicates = 0;
    try {
      const res = await this.#ctx.submitBlock(bytes, {
        source: this.#name,
        defaultCharset: this.#cfg.charset ?? 'gb18030',
        noRoute: this.#cfg.noRoute ?? 'AA',
        invalidBytes: this.#cfg.invalidBytes ?? 'reject',
        multiMessageBlocks: this.#cfg.multiMessageBlocks ?? 'split',
        before: (i) => {
          if (records.has(i)) {
            skipped = true;
            resumedPast++;
            this.#counts.resumedPast++;
            return false;
          }
          return !stopped && !this.#closing;
        },
        after: async (i, o) => {
          if (o.status === 'failed') {
            stopped ??= o;
            return;
          }
          if (o.status === 'duplicate') {
            duplicates++;
            this.#counts.duplicates++;
          }
          const r: ProgressRecord = { i, s: o.status, ...(o.controlId ? { id: o.controlId } : {}) };
          if (o.status === 'rejected') Object.assign(r, { c: o.code, r: o.reason });
          if (this.#cfg.ack) r.a = this.#ctx.renderAck(o).toString('base64');
          await plog.write(`${JSON.stringify(r)}\n`);
          await plog.datasync();
          records.set(i, r);
          // Back-pressure: hold the next message of this file until the engine resumes.
          await untilResumed(this.#ctx.flow, this.#stop.signal);
        },
      });
      total = res.units.reduce((s, u) => s + u.messages, 0);
      if (total === 0) {
        await this.#finish(claimed, original, { empty: true });
        return true;
      }
      if (stopped || records.size < total) {
        if (stopped) {
          this.#counts.retries++;
          log.warn({ code: stopped.code, reason: stopped.reason, handled: records.size, messages: total }, 'message not taken for a passing reason; the file stays claimed and is retried');
        }
        return false;
      }
      const ackText = this.#cfg.ack ? (skipped ? this.#rebuildAcks(bytes, records) : Buffer.concat(res.replies.flatMap((b) => [b, Buffer.from('\n')]))) : undefined;
      await this.#finish(claimed, original, { records, total, ...(ackText ? { ackText } : {}) });
    } finally {
      await plog.close();
    }
    const refused = [...records.values()].filter((r) => r.s === 'rejected').length;
    log.info({ messages: total, refused, resumed: skipped, resumedPast, duplicates }, refused ? 'file moved to error' : 'file done');
    return true;
  }

  /** The ACK file of a file resumed after a restart: the recorded ACK of every message, batch envelopes rebuilt. */
  #rebuildAcks(bytes: Buffer, records: Map<number, ProgressRecord>): Buffer {
    const out: Buffer[] = [];
    const nl = Buffer.from('\n');
    const ackOf = (i: number) => Buffer.from(records.get(i)?.a ?? '', 'base64');
    let i = 0;
    for (const u of splitBlock(bytes).units) {
      if (u.kind === 'message') {
        out.push(ackOf(i++), nl);
        continue;
      }
      const acks = u.messages.map(() => ackOf(i++));
      const env = buildBatchAckEnvelope(u.batch.header.toString('latin1'), acks.length, {
        controlId: `B${randomBytes(10).toString('hex').slice(0, 19)}`,
        ...(acks[0]?.length ? { firstAck: acks[0].toString('latin1') } : {}),
      });
      out.push(Buffer.from(env.header, 'latin1'), ...acks, Buffer.from(env.trailer, 'latin1'), nl);
    }
    return Buffer.concat(out);
  }

  /** Writes the ACK file and the `.err` text, moves the file to done or error, drops its progress log. */
  async #finish(
    claimed: string,
    original: string,
    r: { records?: Map<number, ProgressRecord>; total?: number; ackText?: Buffer; tooLarge?: number; empty?: boolean; notRegular?: boolean },
  ): Promise<void> {
    const claimedPath = path.join(this.#work, claimed);
    const lines: string[] = [];
    if (r.tooLarge !== undefined) lines.push(`file refused: ${r.tooLarge} bytes is over maxFileBytes (${this.#maxBytes}); no message was read`);
    if (r.notRegular) lines.push('file refused: not a regular file');
    if (r.empty) lines.push('file refused: it holds no HL7 message (empty or blank)');
    for (const rec of [...(r.records?.values() ?? [])].sort((a, b) => a.i - b.i)) {
      if (rec.s !== 'rejected') continue;
      lines.push(`message ${rec.i + 1} (MSH-10 ${rec.id ?? 'unreadable'}): ${rec.c ?? 'REJECTED'}: ${rec.r || 'refused'}`);
    }
    if (r.ackText) await writeUnique(this.#ack, `${original}.ack`, r.ackText);
    if (lines.length) {
      const refused = r.records ? [...r.records.values()].filter((x) => x.s === 'rejected').length : 0;
      const head = r.total !== undefined ? `${original}: ${r.total} message(s), ${r.total - refused} committed, ${refused} refused\n` : `${original}\n`;
      const used = await linkUnique(claimedPath, this.#error, original);
      await writeUnique(this.#error, `${used}.err`, head + lines.join('\n') + '\n');
      this.#counts.error++;
    } else {
      await linkUnique(claimedPath, this.#done, original);
      this.#counts.done++;
    }
    await rm(claimedPath, { force: true });
    await rm(this.#progressFile(claimed), { force: true });
  }

  /** Progress logs whose claimed file is gone (a crash between the move and the cleanup). */
  async dropStaleProgress(): Promise<void> {
    const claimed = new Set(await readdir(this.#work));
    for (const f of await readdir(this.#progressDir)) {
      if (f.endsWith('.log') && !claimed.has(f.slice(0, -4))) await unlink(path.join(this.#progressDir, f)).catch(() => undefined);
    }
  }
}

/** A stable id of this engine's data directory, so each engine sharing `dir` resumes only the files it claimed. */
async function instanceId(stateDir: string): Promise<string> {
  const file = path.join(stateDir, 'instance');
  try {
    const id = (await readFile(file, 'utf8')).trim();
    if (/^[0-9a-f]{16}$/.test(id)) return id;
  } catch {
    /* first start */
  }
  const id = randomBytes(8).toString('hex');
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, `${id}\n`, { mode: 0o600 });
  await rename(tmp, file);
  return id;
}

export const fileSourceSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'type', 'dir'],
  properties: {
    name: { type: 'string', pattern: '^[a-z][a-z0-9-]*$', description: 'Name routes use in `sources:`' },
    type: { const: 'file' },
    dir: { type: 'string', minLength: 1, description: 'Directory senders drop files into (relative to the site file); done/, error/, ack/ and .work/ are made inside it' },
    pattern: { type: 'string', minLength: 1, pattern: '^[^/\\\\]+$', description: 'File names taken: * any characters, ? one character, matched on the name only (default *.hl7)' },
    charset: { type: 'string', description: 'Charset for messages that leave MSH-18 empty (default gb18030)' },
    poll: { ...durationSchema, description: 'How often the directory is read (default 2s). A file is taken once its size and mtime did not change between two polls' },
    ack: { type: 'boolean', description: 'Write the ACKs of each file to ack/<file>.ack (default false)' },
    noRoute: { enum: ['AA', 'AR'], description: 'ACK for a message no route accepts (default AA: accepted and ignored; AR: refused, the file goes to error/)' },
    invalidBytes: { enum: ['reject', 'replace'], description: 'Bytes invalid in the declared charset: reject refuses the message (default); replace keeps them as U+FFFD and marks the message' },
    multiMessageBlocks: { enum: ['split', 'reject'], description: 'Several loose messages in one file: split processes each, in order (default); reject refuses them all. Batches (FHS/BHS) are always processed' },
    maxFileBytes: { type: 'integer', minimum: 1, description: 'Largest file read (default 64 MiB); a larger one goes to error/ unread' },
  },
} as const;

const fileSource: SourceDefinition<FileSourceConfig> = {
  type: 'file',
  summary: 'HL7 files dropped into a directory (LIS, physical-exam systems): claimed by rename, moved to done/ or error/, ACKs to ack/',
  configSchema: fileSourceSchema,
  async start(ctx: SourceContext & { config: FileSourceConfig }, _submit: Submit): Promise<RunningSource> {
    const cfg = ctx.config;
    const stateDir = path.join(ctx.dataDir, 'sources', cfg.name);
    const dir = path.resolve(ctx.baseDir, cfg.dir);
    let src: FileSource | undefined;
    let step = dir;
    const checks = async (): Promise<FileSource> => {
      await makeDirs(stateDir, 0o700);
      const s = new FileSource(ctx, cfg, await instanceId(stateDir), stateDir);
      for (const d of s.dirs) {
        step = d;
        await makeDirs(d, 0o700);
        await access(d, fsc.R_OK | fsc.W_OK | fsc.X_OK);
      }
      step = dir;
      await probeDir(dir, s.workDir);
      await s.dropStaleProgress();
      return s;
    };
    // A file system that never answers (a hung network mount) must not hold the start either.
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer from the file system in ${START_CHECK_MS / 1000} s`)), START_CHECK_MS);
    });
    try {
      src = await Promise.race([checks(), deadline]);
    } catch (e) {
      throw fileSourceErrors.error('FILE_E_DIR_UNUSABLE', { listener: cfg.name, path: step, detail: dirProblem(e) });
    } finally {
      clearTimeout(timer);
    }
    src.start();
    return src;
  },
};

export default fileSource;
