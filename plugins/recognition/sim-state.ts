/**
 * In-memory state of the recognition platform simulator: what this hospital
 * uploaded, and results from *other* institutions (seeded) that recognition
 * queries answer from, so a duplicate order is found. All data is synthetic.
 */
import { randomUUID } from 'node:crypto';

export type ReportType = 'lab' | 'exam';

export interface StoredReport {
  type: ReportType;
  reportId: string;
  status: 'active' | 'revoked';
  /** Uploads of this report id, in order (a correction adds one). */
  versions: number;
  data: Record<string, unknown>;
  /** PDF as uploaded (base64), if any. */
  pdf?: string;
  revokeReason?: string;
}

/** A result another institution uploaded; the platform offers it for recognition. */
export interface ForeignResult {
  reportId: string;
  reportType: ReportType;
  idNumber: string;
  itemCode: string;
  itemName: string;
  institution: string;
  institutionCode: string;
  /** YYYYMMDD */
  reportDate: string;
  pdf: string;
}

export interface SimCheck {
  checkId: string;
  orderNo: string;
  itemCode: string;
  priorReportId: string;
  decided?: string;
}

/** A minimal valid one-page PDF, so downloads can be opened. */
export function tinyPdf(text: string): string {
  const content = `BT /F1 12 Tf 72 720 Td (${text.replace(/[()\\]/g, '')}) Tj ET`;
  const objs = [
    '<</Type/Catalog/Pages 2 0 R>>',
    '<</Type/Pages/Kids[3 0 R]/Count 1>>',
    '<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]/Resources<</Font<</F1 4 0 R>>>>/Contents 5 0 R>>',
    '<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>',
    `<</Length ${content.length}>>stream\n${content}\nendstream`,
  ];
  let out = '%PDF-1.4\n';
  const offsets: number[] = [];
  objs.forEach((o, i) => {
    offsets.push(out.length);
    out += `${i + 1} 0 obj\n${o}\nendobj\n`;
  });
  const xref = out.length;
  out += `xref\n0 ${objs.length + 1}\n0000000000 65535 f \n${offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('')}`;
  out += `trailer\n<</Size ${objs.length + 1}/Root 1 0 R>>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, 'latin1').toString('base64');
}

function daysAgo(n: number, now: number): string {
  return new Date(now - n * 86_400_000).toISOString().slice(0, 10).replace(/-/g, '');
}

/**
 * Seeded results of other institutions for the sample patients (samples/):
 * 张三丰 had a blood count (LAB0001) elsewhere last week, 李四 a liver panel
 * (LAB0003), 王小明 a chest CT (RIS0101). Orders for anything else are not duplicates.
 */
export function seedForeignResults(now = Date.now()): ForeignResult[] {
  const r = (reportId: string, reportType: ReportType, idNumber: string, itemCode: string, itemName: string, institution: string, institutionCode: string, age: number): ForeignResult => ({
    reportId, reportType, idNumber, itemCode, itemName, institution, institutionCode, reportDate: daysAgo(age, now), pdf: tinyPdf(`${reportId} ${itemCode}`),
  });
  // Synthetic ID numbers (made up, valid check digits), the same ones the samples use: they belong to nobody.
  return [
    r('EXT-LAB-0001', 'lab', '440106199003152314', 'LAB0001', '血常规', '示例市中心医院', 'H4413020002', 6),
    r('EXT-LAB-0002', 'lab', '440106199003152314', 'LAB0007', '血脂四项', '示例市妇幼保健院', 'H4413020003', 20),
    r('EXT-LAB-0003', 'lab', '440104198507223422', 'LAB0003', '肝功能', '示例市中心医院', 'H4413020002', 3),
    r('EXT-RIS-0001', 'exam', '440305197811021174', 'RIS0101', '胸部CT平扫', '示例市第二人民医院', 'H4413020004', 10),
  ];
}

export class SimState {
  readonly patients = new Map<string, Record<string, unknown>>();
  readonly departments = new Map<string, Record<string, unknown>>();
  readonly staff = new Map<string, Record<string, unknown>>();
  readonly reports = new Map<string, StoredReport>();
  readonly checks = new Map<string, SimCheck>();
  readonly decisions: Record<string, unknown>[] = [];
  foreign: ForeignResult[] = seedForeignResults();

  reset(): void {
    this.patients.clear();
    this.departments.clear();
    this.staff.clear();
    this.reports.clear();
    this.checks.clear();
    this.decisions.length = 0;
    this.foreign = seedForeignResults();
  }

  /** ID number of a patient this hospital uploaded. */
  idNumberOf(patientId: string): string | undefined {
    const p = this.patients.get(patientId);
    return p && typeof p.idNumber === 'string' && p.idNumber ? p.idNumber : undefined;
  }

  /** Recognizable results of other institutions for an ID number, newest first. */
  recognizable(idNumber: string, filter: { itemCode?: string; institution?: string; dateFrom?: string; dateTo?: string } = {}): ForeignResult[] {
    return this.foreign
      .filter((f) => f.idNumber === idNumber)
      .filter((f) => !filter.itemCode || f.itemCode === filter.itemCode)
      .filter((f) => !filter.institution || f.institution === filter.institution || f.institutionCode === filter.institution)
      .filter((f) => !filter.dateFrom || f.reportDate >= filter.dateFrom.slice(0, 8))
      .filter((f) => !filter.dateTo || f.reportDate <= filter.dateTo.slice(0, 8))
      .sort((a, b) => b.reportDate.localeCompare(a.reportDate));
  }

  newCheck(orderNo: string, itemCode: string, priorReportId: string): SimCheck {
    const c: SimCheck = { checkId: randomUUID(), orderNo, itemCode, priorReportId };
    this.checks.set(`${orderNo}\u0000${itemCode}`, c);
    return c;
  }

  /**
   * Every report without its data: what a test needs to check that a big
   * report arrived whole (the count of its results and of distinct result
   * codes) without copying its data.
   */
  reportSummaries(): Record<string, unknown>[] {
    return [...this.reports.values()].map((r) => {
      const results = Array.isArray(r.data.results) ? (r.data.results as { code?: unknown }[]) : undefined;
      return {
        type: r.type,
        reportId: r.reportId,
        patientId: (r.data.patient as { patientId?: unknown } | undefined)?.patientId,
        status: r.status,
        versions: r.versions,
        pdf: r.pdf !== undefined,
        ...(results ? { resultCount: results.length, distinctCodes: new Set(results.map((x) => x?.code)).size } : {}),
      };
    });
  }

  snapshot(): Record<string, unknown> {
    return {
      patients: Object.fromEntries(this.patients),
      departments: Object.fromEntries(this.departments),
      staff: Object.fromEntries(this.staff),
      reports: Object.fromEntries(this.reports),
      checks: [...this.checks.values()],
      decisions: this.decisions,
      foreign: this.foreign.map(({ pdf: _pdf, ...f }) => f),
    };
  }
}
