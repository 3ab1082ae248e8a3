/**
 * Samples sent by the LIS and RIS/PACS: lab and exam reports, signed (F),
 * corrected (C) and cancelled (X), a report document (MDM^T02) and two
 * sensitive lab reports (tuberculosis, HIV) for the sensitive-record guard.
 */
import { seg, msh, pid, edPdf } from './hl7-build.mjs';
import { P, D } from './people.mjs';

const GB18030 = { charset: 'gb18030', encodeAs: 'gb18030', msh18: 'GB 18030-2000' };
const GBK = { charset: 'gb18030', encodeAs: 'gbk', msh18: 'GBK' };
const UTF8 = { charset: 'utf-8', encodeAs: 'utf-8', msh18: 'UNICODE UTF-8' };

const PV1_ZHANG = seg('PV1', { 1: '1', 2: 'O', 3: '0301^^^内科门诊', 7: D.li, 10: 'MED^内科', 19: 'V20250312001', 44: '20250312093000' });

/** A numeric lab result with unit, reference range, flag and observation time. */
function nm(i, code, name, value, unit, range, flag, status = 'F') {
  return seg('OBX', {
    1: String(i), 2: 'NM', 3: `${code}^${name}^HOSP_LAB`, 5: value, 6: unit, 7: range, 8: flag, 11: status,
    14: '20250312112000', 16: D.labTech, 18: 'XN-1000^希森美康',
  });
}

const BLOOD_ROUTINE = [
  ['WBC', '白细胞计数', '11.2', '10*9/L', '3.5-9.5', 'H'],
  ['NEUT%', '中性粒细胞百分比', '78.5', '%', '40-75', 'H'],
  ['LYMPH%', '淋巴细胞百分比', '15.2', '%', '20-50', 'L'],
  ['MONO%', '单核细胞百分比', '5.1', '%', '3-10', 'N'],
  ['EO%', '嗜酸性粒细胞百分比', '0.8', '%', '0.4-8', 'N'],
  ['BASO%', '嗜碱性粒细胞百分比', '0.4', '%', '0-1', 'N'],
  ['NEUT#', '中性粒细胞绝对值', '8.79', '10*9/L', '1.8-6.3', 'H'],
  ['LYMPH#', '淋巴细胞绝对值', '1.70', '10*9/L', '1.1-3.2', 'N'],
  ['RBC', '红细胞计数', '4.52', '10*12/L', '4.3-5.8', 'N'],
  ['HGB', '血红蛋白', '128', 'g/L', '130-175', 'L'],
  ['HCT', '红细胞压积', '39.8', '%', '40-50', 'L'],
  ['MCV', '平均红细胞体积', '88.1', 'fL', '82-100', 'N'],
  ['MCH', '平均红细胞血红蛋白含量', '28.3', 'pg', '27-34', 'N'],
  ['MCHC', '平均红细胞血红蛋白浓度', '322', 'g/L', '316-354', 'N'],
  ['PLT', '血小板计数', '356', '10*9/L', '125-350', 'H'],
];

/** Lab report of 张三丰's 血常规; `status` is OBR-25, `changes` overrides values by code (corrected report). */
function bloodRoutine({ controlId, time, status, changes = {}, pdfText }) {
  const obx = [];
  if (status !== 'X') {
    BLOOD_ROUTINE.forEach(([code, name, value, unit, range, flag], i) => {
      const c = changes[code];
      obx.push(c ? nm(i + 1, code, name, c.value, unit, range, c.flag, 'C') : nm(i + 1, code, name, value, unit, range, flag));
    });
    obx.push(seg('OBX', { 1: String(obx.length + 1), 2: 'ED', 3: 'PDF^检验报告PDF^HOSP_LAB', 5: edPdf(pdfText), 11: status }));
  }
  return [
    msh({ app: 'LIS', time, type: 'ORU^R01^ORU_R01', controlId, charset: GB18030.msh18 }),
    pid(P.zhang),
    PV1_ZHANG,
    seg('ORC', { 1: 'RE', 2: 'ORD20250312001^HIS', 3: 'LIS20250312000123^LIS', 5: status === 'X' ? 'CA' : 'CM', 9: time, 12: D.li }),
    seg('OBR', {
      1: '1', 2: 'ORD20250312001^HIS', 3: 'LIS20250312000123^LIS', 4: 'LAB0001^血常规^HOSP_LAB', 6: '20250312100000',
      7: '20250312101500', 14: '20250312102000', 15: 'BLD&全血&HL70070', 16: D.li, 22: time, 24: 'LAB', 25: status,
      32: 'T0102&钱&磊',
    }),
    ...(status === 'X' ? [seg('NTE', { 1: '1', 3: '标本溶血，报告作废，请重新采样' })] : []),
    ...obx,
  ];
}

/*
 * The impression carries every escape sequence a report writer produces:
 * \F\ (|), \S\ (^), \T\ (&), \R\ (~), \E\ (\) and \.br\ (line break).
 */
const IMPRESSION_ESCAPED = String.raw`1. 右肺下叶外基底段磨玻璃结节（Lung-RADS 2类），建议12个月复查\.br\2. 双肺少许纤维灶 \T\ 钙化灶\.br\扫描参数：层厚1.25mm\F\螺距0.984\F\窗宽\S\窗位 1500\S\-600\.br\影像路径：D:\E\PACS\E\2025\E\CT0312\.br\随访：3个月\R\6个月`;
const FINDINGS = '胸廓对称，气管居中。右肺下叶外基底段见一磨玻璃结节，大小约6mm×5mm，边界清。双肺散在少许纤维条索影及钙化灶。纵隔内未见肿大淋巴结，未见胸腔积液。';

/** Exam report of 张三丰's 胸部CT平扫 from the RIS. */
function chestCt({ controlId, time, status, impression, pdfText }) {
  const obx = status === 'X' ? [] : [
    seg('OBX', { 1: '1', 2: 'TX', 3: 'CT-FIND^检查所见^HOSP_RIS', 5: FINDINGS, 11: status, 14: '20250312143000', 16: D.radiologist }),
    seg('OBX', { 1: '2', 2: 'FT', 3: 'CT-IMP^诊断意见^HOSP_RIS', 5: impression, 11: status, 14: '20250312143000', 16: D.radiologist }),
    seg('OBX', { 1: '3', 2: 'ED', 3: 'PDF^检查报告PDF^HOSP_RIS', 5: edPdf(pdfText), 11: status }),
  ];
  return [
    msh({ app: 'RIS', time, type: 'ORU^R01^ORU_R01', controlId, charset: UTF8.msh18 }),
    pid(P.zhang),
    PV1_ZHANG,
    seg('ORC', { 1: 'RE', 2: 'ORD20250312002^HIS', 3: 'RIS20250312000456^RIS', 5: status === 'X' ? 'CA' : 'CM', 9: time, 12: D.li }),
    seg('OBR', {
      1: '1', 2: 'ORD20250312002^HIS', 3: 'RIS20250312000456^RIS', 4: 'RIS0101^胸部CT平扫^HOSP_RIS', 6: '20250312100000',
      7: '20250312140500', 16: D.li, 22: time, 24: 'CT', 25: status, 32: 'R0202&吴&芳', 34: 'CT01&郑&强',
    }),
    ...(status === 'X' ? [seg('NTE', { 1: '1', 3: '报告书写错误患者，撤销' })] : []),
    ...obx,
  ];
}

/** A lab report whose diagnosis and items are sensitive (withheld from sharing by policy). */
function sensitiveLab({ controlId, time, patient, lisId, orderNo, item, dg1, items, pdfText, enc }) {
  const obx = items.map(([code, name, value, range, flag], i) =>
    seg('OBX', { 1: String(i + 1), 2: 'ST', 3: `${code}^${name}^HOSP_LAB`, 5: value, 7: range, 8: flag, 11: 'F', 14: time, 16: D.labTech }));
  if (pdfText) obx.push(seg('OBX', { 1: String(obx.length + 1), 2: 'ED', 3: 'PDF^检验报告PDF^HOSP_LAB', 5: edPdf(pdfText), 11: 'F' }));
  return [
    msh({ app: 'LIS', time, type: 'ORU^R01^ORU_R01', controlId, charset: enc.msh18 }),
    pid(patient),
    seg('PV1', { 1: '1', 2: 'O', 3: '0302^^^呼吸内科门诊', 7: D.chen, 19: `V${controlId.slice(3)}` }),
    seg('DG1', { 1: '1', 3: dg1, 5: time, 6: 'W' }),
    seg('ORC', { 1: 'RE', 2: `${orderNo}^HIS`, 3: `${lisId}^LIS`, 5: 'CM', 9: time, 12: D.chen }),
    seg('OBR', {
      1: '1', 2: `${orderNo}^HIS`, 3: `${lisId}^LIS`, 4: item, 7: time, 16: D.chen, 22: time, 24: 'LAB', 25: 'F',
      32: 'T0102&钱&磊',
    }),
    ...obx,
  ];
}

export const RESULT_SAMPLES = [
  {
    file: '15-oru-r01-lab-report-final.hl7', type: 'ORU^R01', controlId: 'LIS202503120015', ...GB18030,
    description: 'Lab report 血常规 for 张三丰 signed in the LIS (OBR-25=F): 15 NM results with units, ranges, H/L flags, plus a PDF (ED)',
    features: ['ed-pdf'],
    expects: { consent: false, routes: ['recognition-lab'] },
    segments: () => bloodRoutine({ controlId: 'LIS202503120015', time: '20250312113000', status: 'F', pdfText: 'Synthetic lab report LIS20250312000123 - final' }),
  },
  {
    file: '16-oru-r01-lab-report-corrected.hl7', type: 'ORU^R01', controlId: 'LIS202503120016', ...GB18030,
    description: 'The same lab report corrected (OBR-25=C): PLT and HGB re-measured (OBX-11=C), new PDF',
    features: ['ed-pdf'],
    expects: { consent: false, routes: ['recognition-lab'] },
    segments: () => bloodRoutine({
      controlId: 'LIS202503120016', time: '20250312150000', status: 'C',
      changes: { PLT: { value: '336', flag: 'N' }, HGB: { value: '131', flag: 'N' } },
      pdfText: 'Synthetic lab report LIS20250312000123 - corrected',
    }),
  },
  {
    file: '17-oru-r01-lab-report-cancelled.hl7', type: 'ORU^R01', controlId: 'LIS202503120017', ...GB18030,
    description: 'The same lab report cancelled (OBR-25=X, no OBX, NTE with the reason)',
    expects: { consent: false, routes: ['recognition-lab'] },
    segments: () => bloodRoutine({ controlId: 'LIS202503120017', time: '20250312160000', status: 'X' }),
  },
  {
    file: '18-oru-r01-exam-report-final-escapes.hl7', type: 'ORU^R01', controlId: 'RIS202503120018', ...UTF8,
    description: 'Exam report 胸部CT平扫 for 张三丰 from the RIS (OBR-24=CT, OBR-25=F): findings TX, impression FT with \\F\\ \\S\\ \\T\\ \\R\\ \\E\\ \\.br\\ escapes, PDF (ED)',
    features: ['escapes', 'ed-pdf'],
    expects: { consent: false, routes: ['recognition-exam'] },
    segments: () => chestCt({ controlId: 'RIS202503120018', time: '20250312150500', status: 'F', impression: IMPRESSION_ESCAPED, pdfText: 'Synthetic exam report RIS20250312000456 - final' }),
  },
  {
    file: '19-oru-r01-exam-report-corrected.hl7', type: 'ORU^R01', controlId: 'RIS202503120019', ...UTF8,
    description: 'The same exam report corrected (OBR-25=C): impression rewritten, new PDF',
    features: ['ed-pdf'],
    expects: { consent: false, routes: ['recognition-exam'] },
    segments: () => chestCt({
      controlId: 'RIS202503120019', time: '20250312170000', status: 'C',
      impression: String.raw`1. 右肺下叶外基底段磨玻璃结节（Lung-RADS 2类），建议6个月复查\.br\2. 双肺少许纤维灶及钙化灶`,
      pdfText: 'Synthetic exam report RIS20250312000456 - corrected',
    }),
  },
  {
    file: '20-oru-r01-exam-report-cancelled.hl7', type: 'ORU^R01', controlId: 'RIS202503120020', ...UTF8,
    description: 'The same exam report cancelled (OBR-25=X, no OBX, NTE with the reason)',
    expects: { consent: false, routes: ['recognition-exam'] },
    segments: () => chestCt({ controlId: 'RIS202503120020', time: '20250312173000', status: 'X' }),
  },
  {
    file: '21-mdm-t02-exam-report-document.hl7', type: 'MDM^T02', controlId: 'PACS202503140021', ...GBK,
    description: 'Exam report document (MDM^T02) 头颅MR平扫 for 王小明 from PACS (MSH-3=PACS): TXA, findings/impression TX, PDF (ED)',
    features: ['ed-pdf'],
    expects: { consent: false, routes: ['recognition-exam'] },
    segments: () => [
      msh({ app: 'PACS', time: '20250314153000', type: 'MDM^T02^MDM_T02', controlId: 'PACS202503140021', charset: GBK.msh18 }),
      seg('EVN', { 1: 'T02', 2: '20250314153000' }),
      pid(P.wang, ['PI', 'NI', 'DL']),
      seg('PV1', { 1: '1', 2: 'O', 3: '0301^^^内科门诊', 7: D.li, 19: 'V20250314003' }),
      seg('TXA', {
        1: '1', 2: 'MR^影像诊断报告^HOSP', 3: 'FT', 4: '20250314153000', 5: D.radiologist, 6: '20250314150000',
        12: 'PACS20250314000789^PACS', 14: 'ORD20250314005^HIS', 15: 'RIS20250314000789^RIS', 17: 'AU', 19: 'AV', 22: D.radReviewer,
      }),
      seg('OBX', { 1: '1', 2: 'TX', 3: 'MR-FIND^检查所见^HOSP_RIS', 5: '脑实质内未见异常信号，脑室系统未见扩张，中线结构居中。', 11: 'F', 16: D.radiologist }),
      seg('OBX', { 1: '2', 2: 'TX', 3: 'MR-IMP^诊断意见^HOSP_RIS', 5: '头颅MR平扫未见明显异常。', 11: 'F', 16: D.radiologist }),
      seg('OBX', { 1: '3', 2: 'ED', 3: 'PDF^检查报告PDF^HOSP_RIS', 5: edPdf('Synthetic exam report PACS20250314000789 - final'), 11: 'F' }),
    ],
  },
  {
    file: '22-oru-r01-lab-sensitive-tuberculosis.hl7', type: 'ORU^R01', controlId: 'LIS202503140022', ...GB18030,
    description: 'Sensitive: lab report for 黄志强 with diagnosis DG1-3 A15.0 (pulmonary tuberculosis) and a positive MTB DNA item, PDF (ED)',
    features: ['sensitive', 'ed-pdf'],
    expects: { consent: false, routes: ['recognition-lab'], sensitive: 'tuberculosis' },
    segments: () => sensitiveLab({
      controlId: 'LIS202503140022', time: '20250314101500', patient: P.huang, lisId: 'LIS20250314000201', orderNo: 'ORD20250314001',
      item: 'LAB0301^结核分枝杆菌核酸检测^HOSP_LAB', dg1: 'A15.0^肺结核，经显微镜下痰检查证实^ICD10', enc: GB18030,
      items: [['MTB-DNA', '结核分枝杆菌DNA', '阳性(+)', '阴性(-)', 'A'], ['RIF', '利福平耐药基因', '未检出', '未检出', 'N']],
      pdfText: 'Synthetic lab report LIS20250314000201 - final',
    }),
  },
  {
    file: '23-oru-r01-lab-sensitive-hiv.hl7', type: 'ORU^R01', controlId: 'LIS202503140023', ...GBK,
    description: 'Sensitive: lab report for 林晓燕 with diagnosis DG1-3 B20 (HIV disease) and positive HIV antibody items',
    features: ['sensitive'],
    expects: { consent: false, routes: ['recognition-lab'], sensitive: 'hiv' },
    segments: () => sensitiveLab({
      controlId: 'LIS202503140023', time: '20250314113000', patient: P.lin, lisId: 'LIS20250314000202', orderNo: 'ORD20250314002',
      item: 'LAB0402^HIV抗体确证试验^HOSP_LAB', dg1: 'B20^人类免疫缺陷病毒[HIV]病造成的传染病和寄生虫病^ICD10', enc: GBK,
      items: [['HIV-AB', 'HIV抗体初筛', '阳性(+)', '阴性(-)', 'A'], ['HIV-WB', 'HIV-1抗体确证(免疫印迹)', '阳性(+)', '阴性(-)', 'A']],
    }),
  },
];
