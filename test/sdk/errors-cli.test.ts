/** `hisbridge errors` lists the codes the registry knows: core codes and each plugin family's catalogue. */
import { describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';

describe('hisbridge errors', () => {
  it('lists core and plugin-family codes with owner, retry and message; --family and --json filter and format', async () => {
    const all = await cli(['errors']);
    expect(all.code).toBe(0);
    const lines = all.stdout.trim().split('\n');
    expect(lines).toContain('GDEHR_E_BUSINESS\tgdEhr\tpermanent\t-\tprovincial platform refused: returnCode {returnCode} {returnDesc}');
    expect(lines).toContain('RECOG_E_AUTH\trecognition\tretryable\t-\ttoken request failed: {detail}');
    expect(lines).toContain('HTTP_E_NOT_FOUND\tcore\tpermanent\t404\tno such endpoint');
    expect(lines).toContain('PLUGIN_E_PERMANENT\tcore\tpermanent\t-\t{detail}');
    const json = await cli(['errors', '--family', 'recognition', '--json']);
    expect(json.code).toBe(0);
    const rows = JSON.parse(json.stdout) as { code: string; family: string }[];
    expect(rows.length).toBeGreaterThan(5);
    expect(rows.every((r) => r.family === 'recognition' && r.code.startsWith('RECOG_'))).toBe(true);
    const bad = await cli(['errors', '--family', 'nope']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/no family "nope" \(known: .*gdEhr.*recognition/);
  }, 60_000);
});
