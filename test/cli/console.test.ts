/** `hisbridge console hash-password` through the built CLI (run `npx tsc -p .` first). */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { verifyPassword } from '../../core/ops/console/auth.js';

function hisbridge(args: string[], input: string) {
  const r = spawnSync(process.execPath, [path.resolve('dist/core/cli/main.js'), ...args], { encoding: 'utf8', input });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('hisbridge console hash-password', () => {
  it('prints a hash that verifies with the piped password and not with another', () => {
    const r = hisbridge(['console', 'hash-password'], 'correct horse battery\n');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const hash = r.out.trim();
    expect(r.out.split('\n').filter(Boolean)).toHaveLength(1);
    expect(hash).toMatch(/^scrypt\$\d+\$\d+\$\d+\$[^$]+\$[^$]+$/);
    expect(hash).not.toContain('correct horse');
    expect(verifyPassword('correct horse battery', hash)).toBe(true);
    expect(verifyPassword('correct horse batterz', hash)).toBe(false);
  });

  it('uses only the first line, and salts each hash differently', () => {
    const a = hisbridge(['console', 'hash-password'], 'first-line-pass\r\nsecond line\n').out.trim();
    const b = hisbridge(['console', 'hash-password'], 'first-line-pass').out.trim();
    expect(verifyPassword('first-line-pass', a)).toBe(true);
    expect(verifyPassword('first-line-pass', b)).toBe(true);
    expect(a).not.toBe(b);
  });

  it('exits 2 with a message and no output on empty input', () => {
    for (const input of ['', '\n']) {
      const r = hisbridge(['console', 'hash-password'], input);
      expect(r.code).toBe(2);
      expect(r.out).toBe('');
      expect(r.err).toContain('no password on stdin');
    }
  });

  it('exits 2 for a password shorter than 8 characters and for an unknown subcommand', () => {
    const short = hisbridge(['console', 'hash-password'], 'short\n');
    expect(short.code).toBe(2);
    expect(short.out).toBe('');
    expect(short.err).toContain('at least 8 characters');
    const bad = hisbridge(['console', 'hash-pw'], 'correct horse battery\n');
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('expected the subcommand hash-password');
  });
});
