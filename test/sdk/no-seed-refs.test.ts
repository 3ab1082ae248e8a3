/**
 * User-facing texts point at the repo's own docs, never at the seed documents
 * the project was specified from (issue 14, item 6): a user of hisbridge has
 * docs/, not seeds/. Every string and template literal in core/ and plugins/
 * (error texts, log messages, CLI help, console pages, schema descriptions) is
 * checked; comments may keep their seed references. Every docs/ link in those
 * texts must name an existing file and heading.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** The string and template literal texts of a TypeScript file, with their line numbers (comments are skipped by the scanner). */
function literals(file: string): { line: number; text: string }[] {
  const text = readFileSync(file, 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: { line: number; text: string }[] = [];
  const visit = (n: ts.Node): void => {
    if (ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n) || ts.isTemplateHead(n) || ts.isTemplateMiddle(n) || ts.isTemplateTail(n)) {
      out.push({ line: sf.getLineAndCharacterOfPosition(n.getStart()).line + 1, text: n.text });
    }
    n.forEachChild(visit);
  };
  visit(sf);
  return out;
}

const FILES = [...sources('core'), ...sources('plugins')];
const SEED = /\bseeds?\b(?! *foreign)|seeds\/|\bseed[ -]?0\d\d\b/i;

/** GitHub-style anchor of a Markdown heading. */
function anchor(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
}

describe('user-facing texts', () => {
  it('name no seed document', () => {
    const hits: string[] = [];
    for (const f of FILES) for (const l of literals(f)) if (SEED.test(l.text)) hits.push(`${f}:${l.line}: ${l.text.slice(0, 120)}`);
    expect(hits).toEqual([]);
  });

  it('point at docs/ files and headings that exist', () => {
    const bad: string[] = [];
    let links = 0;
    for (const f of FILES) {
      for (const l of literals(f)) {
        for (const m of l.text.matchAll(/docs\/([\w.-]+\.md)(?:#([\w-]+))?/g)) {
          links++;
          let doc: string;
          try {
            doc = readFileSync(path.join('docs', m[1]!), 'utf8');
          } catch {
            bad.push(`${f}:${l.line}: docs/${m[1]} does not exist`);
            continue;
          }
          if (m[2] && !doc.split('\n').some((h) => /^#{1,6} /.test(h) && anchor(h.replace(/^#+/, '')) === m[2])) bad.push(`${f}:${l.line}: no heading #${m[2]} in docs/${m[1]}`);
        }
      }
    }
    expect(bad).toEqual([]);
    expect(links).toBeGreaterThan(0);
  });
});
