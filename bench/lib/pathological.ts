/**
 * Pathological but well-formed HL7 v2 messages (issue 11, "linear time
 * everywhere"): huge repetition counts in PID-3 and huge segment counts.
 * Every identifier is synthetic. The in-hospital id (PI) repetition is put
 * last, so a selector such as `PID-3[5=PI].1` has to look at every
 * repetition before it finds it; the identity document (NI) comes first, where
 * the provincial viewer (which looks at the first ten) finds it.
 * Used by the bench scenario, `bench/linear.ts` and the tests.
 */

/** A synthetic resident ID number with a valid check digit (region 440106, born 1990-03-15). */
export function syntheticIdNumber(seq: number): string {
  const body = `4401061990031${String(seq % 10_000).padStart(4, '0')}`;
  const w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += Number(body[i]) * w[i]!;
  return body + '10X98765432'[sum % 11]!;
}

export interface PathologicalOptions {
  /** MSH-10; defaults to a made-up one. */
  controlId?: string;
  /** In-hospital patient id (PID-3 type PI). */
  patientId?: string;
}

/**
 * PID-3 with the NI repetition, then `n` repetitions (`M000001^^^H^MR`,
 * about 15 bytes each, so 100,000 of them make a 1.5 MB message), then PI.
 * `type` picks the event: ADT^A04 (registration with consent: provincial
 * authorization, viewer URL and recognition patient upload) or ORU^R01 from
 * the LIS (recognition lab report).
 */
export function manyPid3Repetitions(n: number, type: 'ADT^A04' | 'ORU^R01' = 'ADT^A04', o: PathologicalOptions = {}): string {
  const controlId = o.controlId ?? `PATHREP${n}`;
  const patientId = o.patientId ?? 'P900000001';
  const reps: string[] = new Array<string>(n);
  for (let i = 0; i < n; i++) reps[i] = `M${String(i).padStart(6, '0')}^^^H^MR`;
  reps.unshift(`${syntheticIdNumber(n)}^^^CHN^NI`);
  reps.push(`${patientId}^^^HOSP^PI`);
  const pid = `PID|1||${reps.join('~')}||测试^患者||19900315|M`;
  if (type === 'ADT^A04') {
    return [
      `MSH|^~\\&|HIS|H4413020001|HISBRIDGE|GDPLAT|20250312093015||ADT^A04^ADT_A01|${controlId}|P|2.5|||||CHN|UNICODE UTF-8`,
      'EVN|A04|20250312093015',
      pid,
      'PV1|1|O|0301^^^内科门诊||||D0012^王^医生',
      'ZCN|Y|30|20250312093010|DESK',
    ].join('\r') + '\r';
  }
  return [
    `MSH|^~\\&|LIS|H4413020001|HISBRIDGE|GDPLAT|20250312113000||ORU^R01^ORU_R01|${controlId}|P|2.5|||||CHN|UNICODE UTF-8`,
    pid,
    'PV1|1|O|0301^^^内科门诊||||D0012^王^医生',
    `ORC|RE|ORD${controlId}^HIS|LIS${controlId}^LIS||CM`,
    `OBR|1|ORD${controlId}^HIS|LIS${controlId}^LIS|LAB0001^血常规^HOSP_LAB||20250312100000||||||||||||||||20250312113000||LAB|F`,
    'OBX|1|NM|WBC^白细胞^HOSP_LAB||6.5|10*9/L|3.5-9.5|N|||F',
  ].join('\r') + '\r';
}

/**
 * An ORU^R01 lab report from the LIS with `n` numeric OBX segments (about 45
 * bytes each), signed (OBR-25 F): the recognition-lab route uploads it.
 */
export function manyObxSegments(n: number, o: PathologicalOptions = {}): string {
  const controlId = o.controlId ?? `PATHOBX${n}`;
  const patientId = o.patientId ?? 'P900000002';
  const lines = [
    `MSH|^~\\&|LIS|H4413020001|HISBRIDGE|GDPLAT|20250312113000||ORU^R01^ORU_R01|${controlId}|P|2.5|||||CHN|UNICODE UTF-8`,
    `PID|1||${patientId}^^^HOSP^PI~${syntheticIdNumber(n + 1)}^^^CHN^NI||测试^患者||19900315|M`,
    'PV1|1|O|0301^^^内科门诊||||D0012^王^医生',
    `ORC|RE|ORD${controlId}^HIS|LIS${controlId}^LIS||CM`,
    `OBR|1|ORD${controlId}^HIS|LIS${controlId}^LIS|LAB0001^血常规^HOSP_LAB||20250312100000||||||||||||||||20250312113000||LAB|F`,
  ];
  for (let i = 1; i <= n; i++) lines.push(`OBX|${i}|NM|T${i}^T^L||${i % 97}.5|g/L|1-99|N|||F`);
  return lines.join('\r') + '\r';
}
