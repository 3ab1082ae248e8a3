/** HL7 test messages for the file source tests (synthetic IDs and names, no real person). */

import { idNumberByDay } from '../helpers/ids.js';

/** Synthetic resident ID numbers (test/helpers/ids.ts). */
export const idNumber = idNumberByDay;

/** A consented registration (ADT^A04, UTF-8 declared in MSH-18): the default routes authorize it at the gd-ehr simulator. */
export function registration(controlId: string, seq: number, sep = '\r'): string {
  return [
    `MSH|^~\\&|LIS|H1|HISBRIDGE|GDPLAT|20250312080000||ADT^A04^ADT_A01|${controlId}|P|2.5||||||UNICODE UTF-8`,
    `PID|1||P${seq}^^^HOSP^PI~${idNumber(seq)}^^^CHN^NI||测试^患者${seq}`,
    'PV1|1|O',
    'ZCN|Y|30',
    '',
  ].join(sep);
}

export function batch(messages: string[], sep = '\r'): string {
  return [
    'FHS|^~\\&|LIS|H1|HISBRIDGE|GDPLAT|20250312080000||||F001',
    'BHS|^~\\&|LIS|H1|HISBRIDGE|GDPLAT|20250312080000||||B001',
    ...messages.map((m) => m.replace(/[\r\n]+$/, '')),
    `BTS|${messages.length}`,
    'FTS|1',
    '',
  ].join(sep);
}
