/**
 * Loads a YAML file so that every later error (YAML syntax, schema, unknown
 * plugin, bad field path, missing environment variable) can name the file,
 * line and column of the offending node.
 */
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isScalar, isMap, isSeq, isPair, type Document, type Node } from 'yaml';

export interface SourcePos {
  file: string;
  line: number;
  col: number;
}

/** One problem found while loading; `toString()` gives `file:line:col: message`. */
export class LoadIssue {
  constructor(
    readonly pos: SourcePos,
    readonly message: string,
    readonly code: string,
  ) {}
  toString(): string {
    return `${this.pos.file}:${this.pos.line}:${this.pos.col}: ${this.message}`;
  }
}

/** Thrown when a file (or a set of files) cannot be loaded; carries every issue found. */
export class LoadError extends Error {
  readonly code = 'CONFIG_E_LOAD';
  constructor(readonly issues: LoadIssue[]) {
    super(issues.map((i) => i.toString()).join('\n'));
    this.name = 'LoadError';
  }
}

export interface YamlSource {
  file: string;
  doc: Document.Parsed;
  lines: LineCounter;
  /** Position of the node at a JSON path (ajv instancePath segments); falls back to the closest parent. `atKey` points at the last key instead of its value. */
  posOf(path: readonly (string | number)[], atKey?: boolean): SourcePos;
}

export function loadYamlText(file: string, text: string): YamlSource {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const src: YamlSource = {
    file,
    doc,
    lines,
    posOf(path, atKey = false) {
      let node: unknown = doc.contents;
      let best = offsetOf(node) ?? 0;
      for (let i = 0; i < path.length; i++) {
        const seg = path[i]!;
        if (isMap(node)) {
          const pair = node.items.find((p) => isPair(p) && keyText(p.key) === String(seg));
          if (!pair) break;
          // Point at the value when it exists, else the key.
          node = pair.value ?? pair.key;
          best = (atKey && i === path.length - 1 ? offsetOf(pair.key) : undefined) ?? offsetOf(node) ?? offsetOf(pair.key) ?? best;
        } else if (isSeq(node)) {
          node = node.items[Number(seg)];
          if (node === undefined) break;
          best = offsetOf(node) ?? best;
        } else break;
      }
      const lp = lines.linePos(best);
      return { file, line: lp.line, col: lp.col };
    },
  };
  return src;
}

export function loadYamlFile(file: string): YamlSource {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new LoadError([new LoadIssue({ file, line: 1, col: 1 }, `cannot read file: ${(e as Error).message}`, 'CONFIG_E_READ')]);
  }
  return loadYamlText(file, text);
}

function keyText(k: unknown): string {
  return isScalar(k) ? String(k.value) : String(k);
}

function offsetOf(node: unknown): number | undefined {
  const r = (node as Node | undefined)?.range;
  return r ? r[0] : undefined;
}

/** YAML syntax errors and warnings as issues. */
export function yamlIssues(src: YamlSource): LoadIssue[] {
  return src.doc.errors.map((e) => {
    const lp = e.linePos?.[0] ?? src.lines.linePos(e.pos[0]);
    const msg = e.message.split('\n')[0] ?? e.message;
    return new LoadIssue({ file: src.file, line: lp.line, col: lp.col }, msg, 'CONFIG_E_YAML');
  });
}

const ENV_REF = /\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}/g;

/**
 * Replaces `${env:NAME}` in every string scalar, in place. A missing variable
 * is an issue at the scalar's position. Returns the names referenced, so
 * secrets can be told apart from inline values.
 */
export function resolveEnvRefs(src: YamlSource, env: NodeJS.ProcessEnv, issues: LoadIssue[]): void {
  const visitNode = (node: unknown): void => {
    if (isMap(node) || isSeq(node)) {
      for (const it of node.items) {
        if (isPair(it)) visitNode(it.value);
        else visitNode(it);
      }
      return;
    }
    if (isScalar(node) && typeof node.value === 'string' && node.value.includes('${env:')) {
      const original = node.value;
      node.value = original.replace(ENV_REF, (_m, name: string) => {
        const v = env[name];
        if (v === undefined) {
          const lp = src.lines.linePos(node.range?.[0] ?? 0);
          issues.push(new LoadIssue({ file: src.file, line: lp.line, col: lp.col }, `environment variable ${name} is not set`, 'CONFIG_E_ENV_MISSING'));
          return '';
        }
        return v;
      });
      secretRefs.add(node);
    }
  };
  visitNode(src.doc.contents);
}

/** Scalars whose value came from ${env:}: allowed to hold secrets. */
const secretRefs = new WeakSet<object>();

const SECRET_KEY = /^(password|passwd|paasToken|token|secret|sm4Key|clientSecret|apiKey|sasl[A-Za-z]*Password)$/i;

/** Keys that hold secrets must reference the environment, never be written inline. */
export function checkInlineSecrets(src: YamlSource, issues: LoadIssue[]): void {
  const visitNode = (node: unknown): void => {
    if (isMap(node)) {
      for (const p of node.items) {
        if (!isPair(p)) continue;
        const k = keyText(p.key);
        if (SECRET_KEY.test(k) && isScalar(p.value) && typeof p.value.value === 'string' && p.value.value !== '' && !secretRefs.has(p.value)) {
          const lp = src.lines.linePos(p.value.range?.[0] ?? 0);
          issues.push(new LoadIssue({ file: src.file, line: lp.line, col: lp.col }, `${k} looks like a secret written inline; use \${env:NAME}`, 'CONFIG_E_INLINE_SECRET'));
        }
        visitNode(p.value);
      }
    } else if (isSeq(node)) node.items.forEach(visitNode);
  };
  visitNode(src.doc.contents);
}
