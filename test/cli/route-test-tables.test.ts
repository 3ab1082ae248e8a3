/**
 * Route test files supply code tables (issue 17): `tables:` in a
 * `*.test.yaml` replaces the tables/ folder for that file; `hisbridge test`
 * (the CLI process) runs the cases against them. A missing key under
 * `missing: error` fails the on-complete route with the reason in the ACK.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';

const ROUTE = `name: dept-reply
match: { events: [ADT^A04] }
ack: on-complete
steps:
  - plugin: map
    as: out
    config:
      fields:
        dept: "\${PV1-3.1|lookup:dept}"
        name: "\${PV1-3.1|lookup:dept.name}"
  - reply: { text: "\${vars.out.dept} \${vars.out.name}" }
`;

const msg = (cid: string, dept: string) => `      hl7: |
        MSH|^~\\&|HIS|H1|HB|HB|20250312093015||ADT^A04^ADT_A01|${cid}|P|2.5|||||CHN|UNICODE UTF-8
        PID|1||P9^^^HOSP^PI
        PV1|1|O|${dept}^^^H1`;

const TEST = `tables:
  dept: |
    code,platform,name
    0101,NK01,内科
  other: { csv: "k,v\\n", missing: keep }
cases:
  - name: a known department is translated from the test file's table
    input:
${msg('T-TBL-1', '0101')}
    ack: { code: AA, text: NK01 内科 }
  - name: an unknown department fails the route with the table and key
    input:
${msg('T-TBL-2', '0999')}
    ack: { code: AE, text: 'table dept has no key "0999"' }
    routes:
      dept-reply: { outcome: failed, errorCode: ROUTE_E_LOOKUP_MISSING }
`;

describe('hisbridge test with tables: in the test file', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'hisbridge-rt-tables-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs the cases against the tables the file supplies', async () => {
    writeFileSync(path.join(dir, 'dept-reply.yaml'), ROUTE);
    const file = path.join(dir, 'dept-reply.test.yaml');
    writeFileSync(file, TEST);
    const run = await cli(['test', file, '--routes', dir]);
    expect(run.stdout).toContain(`ok   ${file}: a known department is translated from the test file's table`);
    expect(run.stdout).toContain(`ok   ${file}: an unknown department fails the route with the table and key`);
    expect(run.stdout.trim().split('\n').at(-1)).toBe('2 passed, 0 failed');
    expect(run.code).toBe(0);
  });

  it('without tables: the route does not load (no such table) and every case fails', async () => {
    const file = path.join(dir, 'no-tables.test.yaml');
    writeFileSync(file, `load: [dept-reply.yaml]\n${TEST.slice(TEST.indexOf('cases:'))}`);
    const run = await cli(['test', file, '--routes', dir]);
    expect(run.stdout).toContain('table dept: no such table');
    expect(run.code).toBe(1);
  });
});
