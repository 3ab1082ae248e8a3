/**
 * One audit WHERE builder (core/store/audit.ts auditWhere) serves the store's
 * queryAudit (API, CLI) and the read-only OpsQueries (console pages, export,
 * statistics): the same filter finds the same rows through both, pages with
 * `before` agree, and the statistics leave operator actions out.
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { OpsQueries } from '../../core/ops/queries.js';
import { auditWhere, type AuditWhereFilter } from '../../core/store/audit.js';
import { freshDirs, openStore } from '../helpers/store.js';

const fresh = freshDirs();
const ID_A = '44010619900307123X';
const T0 = Date.UTC(2026, 0, 1);

describe('audit WHERE builder shared by the store and the ops queries', () => {
  it('finds the same rows through queryAudit, auditPage and auditRows for every filter', async () => {
    const dir = fresh();
    const store = openStore(dir);
    const entries = [
      { plugin: 'gd-ehr', operation: 'authorize', orgCode: 'ORG1', staffNo: 'D1', patientId: ID_A, result: 'ok' },
      { plugin: 'gd-ehr', operation: 'viewer-url', orgCode: 'ORG1', staffNo: 'D2', idNumber: ID_A, result: 'ok' },
      { plugin: 'recognition', operation: 'check', orgCode: 'ORG2', staffNo: 'D1', patientId: 'PAT1', result: 'failed' },
      { plugin: 'console', operation: 'login', staffNo: 'admin', result: 'ok' },
      { plugin: 'recognition', operation: 'check', orgCode: 'ORG1', staffNo: 'D1', patientId: 'PAT2', result: 'ok' },
    ];
    for (const e of entries) store.audit(e);
    const all = store.queryAudit({ limit: 100 });
    expect(all).toHaveLength(entries.length);
    store.close();

    const q = OpsQueries.open(dir);
    const reopened = openStore(dir);
    const ids = (rows: { id: number }[]) => rows.map((r) => r.id);
    const filters: AuditWhereFilter[] = [
      {},
      { orgCode: 'ORG1' },
      { plugin: 'recognition' },
      { plugin: 'recognition', operation: 'check', orgCode: 'ORG1' },
      { patientId: ID_A },
      { patientId: 'PAT1' },
      { since: T0, until: Date.now() + 60_000 },
      { until: T0 },
    ];
    for (const f of filters) {
      const viaStore = ids(reopened.queryAudit({ ...f, limit: 100 }));
      expect(ids(q.auditPage({ ...f, limit: 100 })), JSON.stringify(f)).toEqual(viaStore);
      expect(ids([...q.auditRows(f)]).reverse(), JSON.stringify(f)).toEqual(viaStore);
    }
    expect(ids(reopened.queryAudit({ patientId: ID_A }))).toHaveLength(2);
    expect(ids(q.auditPage({ staffNo: 'D1' }))).toHaveLength(3);
    expect(reopened.queryAudit({ until: T0 })).toEqual([]);

    // Keyset pages: two rows at a time, with and without another filter, agree and cover everything once.
    for (const f of [{}, { orgCode: 'ORG1' }] as AuditWhereFilter[]) {
      const pages: number[][] = [];
      let before: number | undefined;
      for (;;) {
        const page = ids(q.auditPage({ ...f, ...(before !== undefined ? { before } : {}), limit: 2 }));
        expect(page).toEqual(ids(reopened.queryAudit({ ...f, ...(before !== undefined ? { before } : {}), limit: 2 })));
        if (!page.length) break;
        pages.push(page);
        before = page[page.length - 1];
      }
      expect(pages.flat()).toEqual(ids(reopened.queryAudit({ ...f, limit: 100 })));
    }

    // Statistics count outbound calls only: the console login is left out.
    const stats = q.stats('operation', {});
    expect(stats.totals).toEqual({ total: 4, ok: 3, failed: 1, skipped: 0 });
    expect(stats.groups.map((g) => g.key).sort()).toEqual(['gd-ehr/authorize', 'gd-ehr/viewer-url', 'recognition/check']);
    expect(q.stats('org', { orgCode: 'ORG1' }).totals.total).toBe(3);
    // The export keeps operator actions.
    expect([...q.auditRows({ plugin: 'console' })]).toHaveLength(1);
    reopened.close();
    q.close();
  });

  it('reads a patient search and an institution filter through their indexes, not by scanning the audit table', () => {
    const dir = fresh();
    openStore(dir).close();
    const db = new Database(path.join(dir, 'hisbridge.db'), { readonly: true });
    try {
      const key = Buffer.alloc(32, 7);
      const plan = (f: AuditWhereFilter) => {
        const w = auditWhere(key, f);
        return (db.prepare(`EXPLAIN QUERY PLAN SELECT * FROM audit ${w.sql} ORDER BY id DESC LIMIT 10`).all(...w.args) as { detail: string }[]).map((r) => r.detail).join(' | ');
      };
      // Both hash columns are searched through their prefix indexes (a patient id or an ID number may be in either).
      const byPatient = plan({ patientId: ID_A });
      expect(byPatient).toContain('INDEX audit_patient');
      expect(byPatient).toContain('INDEX audit_id_hash');
      expect(plan({ patientId: ID_A, since: T0 })).toContain('INDEX audit_patient');
      // audit_org holds only rows with an institution; a query naming one still uses it.
      expect(plan({ orgCode: 'ORG1' })).toContain('INDEX audit_org');
    } finally {
      db.close();
    }
  });
});

