/**
 * Every code is catalogued (issue 14): each error-code literal written in
 * core/ or plugins/ as a quoted string (LoadIssue codes, HTTP bodies, thrown
 * errors; comments use backticks) is a code the built-in registry knows, and no plugin family's code appears in core.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERRORS } from '../../core/errors.js';
import { builtinRegistry } from '../../plugins/index.js';

const root = path.resolve(__dirname, '../..');

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? tsFiles(p) : e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [p] : [];
  });
}

/** `file:line code` for each quoted code literal in the files. */
function codeLiterals(dir: string): { where: string; code: string }[] {
  const out: { where: string; code: string }[] = [];
  for (const f of tsFiles(path.join(root, dir))) {
    readFileSync(f, 'utf8').split('\n').forEach((line, i) => {
      for (const m of line.matchAll(/['"]([A-Z][A-Z0-9]*_[EW]_[A-Z0-9_]+)['"]/g)) out.push({ where: `${path.relative(root, f)}:${i + 1}`, code: m[1]! });
    });
  }
  return out;
}

describe('every code is catalogued', () => {
  it('each code literal in core/ is a core code', () => {
    const core = new Set(Object.keys(ERRORS));
    const lits = codeLiterals('core');
    expect(lits.length).toBeGreaterThan(50);
    expect(lits.filter((l) => !core.has(l.code)).map((l) => `${l.where} ${l.code}`)).toEqual([]);
    for (const c of ['CONFIG_E_LOAD', 'CONFIG_E_READ', 'ROUTE_E_COMPILE', 'ROUTE_E_STEP_ORDER', 'HTTP_E_NOT_FOUND', 'HTTP_E_METHOD']) expect(core.has(c), c).toBe(true);
  });

  it('each code literal in plugins/ is known to the built-in registry', () => {
    const cat = builtinRegistry().errorCatalogue;
    const lits = codeLiterals('plugins');
    expect(lits.some((l) => l.code.startsWith('GDEHR_')) && lits.some((l) => l.code.startsWith('RECOG_'))).toBe(true);
    expect(lits.filter((l) => !cat.lookup(l.code)).map((l) => `${l.where} ${l.code}`)).toEqual([]);
  });
});
