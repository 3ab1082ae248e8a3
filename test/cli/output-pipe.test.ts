/**
 * `hisbridge audit ... | head`: the reader closes the pipe early. The CLI must
 * finish quietly (no EPIPE stack trace, exit 0) and still record the export
 * in the audit trail.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../../core/store/sqlite.js';
import { CLI_MAIN, cli } from '../helpers/cli.js';

describe('CLI output to a reader that goes away', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'hb-pipe-'));
    const store = Store.open(dir);
    // Far more than a pipe buffer (64 KiB) of export.
    for (let i = 0; i < 3000; i++) store.audit({ plugin: 'gd-ehr', operation: 'viewer-url', orgCode: 'DEMO00001', staffNo: `d${i}`, patientId: `P${i}`, result: 'ok', detail: 'x'.repeat(100) });
    store.close();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('hisbridge audit | head -1: exits 0 without a stack trace and audits the export', async () => {
    const child = spawn(process.execPath, [CLI_MAIN, 'audit', '--data-dir', dir, '--format', 'jsonl'], { env: { ...process.env, HISBRIDGE_LOG_LEVEL: 'silent' } });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const first = await new Promise<string>((resolve) => child.stdout.once('data', (c: Buffer) => resolve(c.toString('utf8'))));
    child.stdout.destroy(); // like head after its first line
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    expect(first).toContain('"operation":"viewer-url"');
    expect(stderr).not.toMatch(/EPIPE|Error|at /);
    expect(code).toBe(0);
    const trail = await cli(['audit', '--data-dir', dir, '--format', 'jsonl', '--plugin', 'cli']);
    expect(trail.stdout).toContain('"operation":"audit-export"');
  });
});
