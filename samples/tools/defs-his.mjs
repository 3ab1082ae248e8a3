/**
 * Samples sent by the HIS: registrations and bookings (with and without the
 * ZCN consent marker), patient updates, department and staff dictionaries,
 * and orders. See make-samples.mjs for the shape of a sample definition.
 */
import { seg, msh, pid } from './hl7-build.mjs';
import { P, D, STAFF_ID } from './people.mjs';

const GB18030 = { charset: 'gb18030', encodeAs: 'gb18030', msh18: 'GB 18030-2000' };
const GBK = { charset: 'gb18030', encodeAs: 'gbk', msh18: 'GBK' };
const UTF8 = { charset: 'utf-8', encodeAs: 'utf-8', msh18: 'UNICODE UTF-8' };
/** MSH-18 left empty: the listener default (gb18030) applies, so the bytes are GBK. */
const NO_MSH18 = { charset: 'gb18030', encodeAs: 'gbk', msh18: '' };

/** Outpatient visit of 张三丰 at 内科门诊, shared by his registration, orders and reports. */
const PV1_ZHANG = seg('PV1', {
  1: '1', 2: 'O', 3: '0301^^^内科门诊', 7: D.li, 10: 'MED^内科', 18: 'R', 19: 'V20250312001',
  20: '01^城镇职工基本医疗保险', 44: '20250312093000',
});

/** ZCN: consent marker. ZCN-1 Y/N, ZCN-2 days, ZCN-3 when, ZCN-4 channel. */
const zcn = (yn, days, time, channel) => seg('ZCN', { 1: yn, 2: days, 3: time, 4: channel });

export const HIS_SAMPLES = [
  {
    file: '01-adt-a04-registration-consent.hl7', type: 'ADT^A04', controlId: 'HIS202503120001', ...GB18030,
    description: 'Outpatient registration of 张三丰 at the desk, consent marker ZCN-1=Y, ZCN-2=30 days',
    expects: { consent: true, routes: ['gd-ehr-authorize'] },
    segments: () => [
      msh({ app: 'HIS', time: '20250312093015', type: 'ADT^A04^ADT_A01', controlId: 'HIS202503120001', charset: GB18030.msh18 }),
      seg('EVN', { 1: 'A04', 2: '20250312093015', 5: D.clerk }),
      pid(P.zhang),
      PV1_ZHANG,
      zcn('Y', '30', '20250312093010', 'DESK^窗口签署'),
    ],
  },
  {
    file: '02-adt-a04-registration-no-consent.hl7', type: 'ADT^A04', controlId: 'HIS202503120002', ...UTF8,
    description: 'Outpatient registration of 李四 (whole name in PID-5.1, passport PPN in PID-3), no ZCN segment',
    expects: { consent: false, routes: [] },
    segments: () => [
      msh({ app: 'HIS', time: '20250312094522', type: 'ADT^A04^ADT_A01', controlId: 'HIS202503120002', charset: UTF8.msh18 }),
      seg('EVN', { 1: 'A04', 2: '20250312094522', 5: D.clerk }),
      pid(P.li, ['PI', 'NI', 'PPN']),
      seg('PV1', { 1: '1', 2: 'O', 3: '0302^^^呼吸内科门诊', 7: D.chen, 10: 'MED^内科', 19: 'V20250312002', 20: '99^自费', 44: '20250312094500' }),
    ],
  },
  {
    file: '03-adt-a01-admission-consent.hl7', type: 'ADT^A01', controlId: 'HIS202503120003', ...GBK,
    description: 'Inpatient admission of 欧阳娜娜 (compound family name) with consent, next of kin with phone, enhanced-mode ACK requested (MSH-15=AL, MSH-16=NE)',
    features: ['enhanced-ack'],
    expects: { consent: true, routes: ['gd-ehr-authorize'] },
    segments: () => [
      msh({ app: 'HIS', time: '20250312102233', type: 'ADT^A01^ADT_A01', controlId: 'HIS202503120003', charset: GBK.msh18, acceptAck: 'AL', appAck: 'NE' }),
      seg('EVN', { 1: 'A01', 2: '20250312102233', 5: D.clerk }),
      pid(P.ouyang),
      seg('NK1', { 1: '1', 2: '欧阳^建华', 3: 'FTH^父亲^HL70063', 5: '13800000018^PRN^CP' }),
      seg('PV1', {
        1: '1', 2: 'I', 3: '0510^0512^03^心血管内科病区', 4: 'R', 7: D.he, 10: 'CAR^心血管内科', 14: '1',
        17: D.he, 19: 'Z20250312003', 20: '02^城乡居民基本医疗保险', 44: '20250312102000',
      }),
      seg('DG1', { 1: '1', 3: 'I10^特发性（原发性）高血压^ICD10', 5: '20250312102000', 6: 'A' }),
      zcn('Y', '30', '20250312101500', 'DESK^入院登记签署'),
    ],
  },
  {
    file: '04-siu-s12-online-booking-consent.hl7', type: 'SIU^S12', controlId: 'YYGH202503120004', ...UTF8,
    description: 'Online booking (预约挂号) of 陈美玲 from the booking platform (MSH-3=YYGH), v2.4, consent given in the app',
    expects: { consent: true, routes: ['gd-ehr-authorize'] },
    segments: () => [
      msh({ app: 'YYGH', time: '20250312201533', type: 'SIU^S12^SIU_S12', controlId: 'YYGH202503120004', version: '2.4', charset: UTF8.msh18 }),
      seg('SCH', {
        1: 'YY20250315008^YYGH', 2: 'HIS20250315008^HIS', 6: 'NEW^新预约', 7: 'ROUTINE^普通门诊', 9: '30', 10: 'min',
        11: '^^^20250315083000^20250315090000', 16: D.chen, 20: 'APP^线上预约', 25: 'Booked^已预约^HL70278',
      }),
      pid(P.chen),
      seg('PV1', { 1: '1', 2: 'O', 3: '0302^^^呼吸内科门诊', 7: D.chen, 19: 'V20250315008' }),
      seg('RGS', { 1: '1', 2: 'A' }),
      seg('AIS', { 1: '1', 2: 'A', 3: 'PT0302^呼吸内科普通号^HOSP', 4: '20250315083000', 7: '30', 8: 'min' }),
      seg('AIL', { 1: '1', 2: 'A', 3: '0302^^^呼吸内科门诊' }),
      seg('AIP', { 1: '1', 2: 'A', 3: D.chen, 4: 'MD^医生' }),
      zcn('Y', '30', '20250312201530', 'APP^线上预约'),
    ],
  },
  {
    file: '05-adt-a05-preadmission-consent.hl7', type: 'ADT^A05', controlId: 'HIS202503120005', ...GB18030,
    description: 'Pre-admission of 刘德明 (whole name in PID-5.1) with consent',
    expects: { consent: true, routes: ['gd-ehr-authorize'] },
    segments: () => [
      msh({ app: 'HIS', time: '20250312143000', type: 'ADT^A05^ADT_A05', controlId: 'HIS202503120005', charset: GB18030.msh18 }),
      seg('EVN', { 1: 'A05', 2: '20250312143000', 5: D.clerk }),
      pid(P.liu),
      seg('PV1', { 1: '1', 2: 'P', 3: '0510^^^心血管内科病区', 7: D.he, 10: 'CAR^心血管内科', 19: 'Z20250313005' }),
      zcn('Y', '30', '20250312142500', 'DESK^入院预约签署'),
    ],
  },
  {
    file: '06-adt-a28-add-person-no-msh18.hl7', type: 'ADT^A28', controlId: 'HIS202503120006', ...NO_MSH18,
    description: 'New patient record (建档) for 王小明 with a driving licence (DL); MSH-18 empty, GBK bytes (listener default applies), v2.4',
    features: ['msh18-empty'],
    expects: { consent: false, routes: ['recognition-patient'] },
    segments: () => [
      msh({ app: 'HIS', time: '20250312150102', type: 'ADT^A28^ADT_A05', controlId: 'HIS202503120006', version: '2.4' }),
      seg('EVN', { 1: 'A28', 2: '20250312150102', 5: D.clerk }),
      pid(P.wang, ['PI', 'NI', 'DL']),
      seg('PV1', { 1: '1', 2: 'N' }),
    ],
  },
  {
    file: '07-adt-a31-update-person-lf.hl7', type: 'ADT^A31', controlId: 'HIS202503120007', ...UTF8, terminator: '\n',
    description: 'Update of 张三丰 (new address), segments terminated by \\n instead of \\r',
    features: ['lf-terminators'],
    expects: { consent: false, routes: ['recognition-patient'] },
    segments: () => [
      msh({ app: 'HIS', time: '20250312160544', type: 'ADT^A31^ADT_A05', controlId: 'HIS202503120007', charset: UTF8.msh18 }),
      seg('EVN', { 1: 'A31', 2: '20250312160544', 5: D.clerk }),
      pid({ ...P.zhang, address: '天河区示例路100号^^广州市^广东省^510630^CHN^H' }),
      seg('PV1', { 1: '1', 2: 'N' }),
    ],
  },
  {
    file: '08-adt-a08-update-consent-withdrawn.hl7', type: 'ADT^A08', controlId: 'HIS202503130008', ...GB18030,
    description: 'Update of 陈美玲 with consent withdrawal (ZCN-1=N, ZCN-2 empty)',
    features: ['consent-withdrawn'],
    expects: { consent: false, routes: ['recognition-patient'] },
    segments: () => [
      msh({ app: 'HIS', time: '20250313090512', type: 'ADT^A08^ADT_A01', controlId: 'HIS202503130008', charset: GB18030.msh18 }),
      seg('EVN', { 1: 'A08', 2: '20250313090512', 5: D.clerk }),
      pid(P.chen),
      seg('PV1', { 1: '1', 2: 'O', 3: '0302^^^呼吸内科门诊', 7: D.chen, 19: 'V20250315008' }),
      zcn('N', '', '20250313090500', 'DESK^窗口撤回'),
    ],
  },
  {
    file: '09-adt-a31-update-person-gbk-ou-yi.hl7', type: 'ADT^A31', controlId: 'HIS202503130009', ...GBK,
    description: 'Update of 區億華: in GBK the second byte of 區 is ^ (85 5E) and of 億 is | (83 7C); split on bytes and the name breaks',
    features: ['gbk-delimiter-bytes'],
    expects: { consent: false, routes: ['recognition-patient'] },
    segments: () => [
      msh({ app: 'HIS', time: '20250313093301', type: 'ADT^A31^ADT_A05', controlId: 'HIS202503130009', charset: GBK.msh18 }),
      seg('EVN', { 1: 'A31', 2: '20250313093301', 5: D.clerk }),
      pid(P.ou, ['PI', 'NI', 'DL']),
      seg('NK1', { 1: '1', 2: '區^億芳', 3: 'SPO^配偶^HL70063', 5: '13800000015^PRN^CP' }),
      seg('PV1', { 1: '1', 2: 'N' }),
    ],
  },
  {
    file: '10-mfn-m05-departments-crlf.hl7', type: 'MFN^M05', controlId: 'HIS202503130010', ...GB18030, terminator: '\r\n',
    description: 'Department dictionary: add 呼吸内科门诊, update 心血管内科病区, delete 内科旧门诊 (MFE/LOC/LDP), \\r\\n terminators, v2.4',
    features: ['crlf-terminators'],
    expects: { consent: false, routes: ['recognition-dict'] },
    segments: () => [
      msh({ app: 'HIS', time: '20250313080000', type: 'MFN^M05^MFN_M05', controlId: 'HIS202503130010', version: '2.4', charset: GB18030.msh18, acceptAck: 'AL', appAck: 'NE' }),
      seg('MFI', { 1: 'LOC^科室字典^HL70175', 3: 'UPD', 6: 'AL' }),
      seg('MFE', { 1: 'MAD', 2: 'MFN0001', 3: '20250313080000', 4: '0302^^^呼吸内科门诊', 5: 'PL' }),
      seg('LOC', { 1: '0302^^^呼吸内科门诊', 2: '呼吸内科门诊', 3: 'C^门诊^HL70260', 4: '示例市第一人民医院' }),
      seg('LDP', { 1: '0302^^^呼吸内科门诊', 2: '03^内科^HOSP', 3: 'OUT^门诊^HL70069' }),
      seg('MFE', { 1: 'MUP', 2: 'MFN0002', 3: '20250313080000', 4: '0510^^^心血管内科病区', 5: 'PL' }),
      seg('LOC', { 1: '0510^^^心血管内科病区', 2: '心血管内科病区（原心内一区）', 3: 'N^病区^HL70260', 4: '示例市第一人民医院' }),
      seg('LDP', { 1: '0510^^^心血管内科病区', 2: '05^心血管内科^HOSP', 3: 'INP^住院^HL70069' }),
      seg('MFE', { 1: 'MDL', 2: 'MFN0003', 3: '20250313080000', 4: '0399^^^内科旧门诊', 5: 'PL' }),
      seg('LOC', { 1: '0399^^^内科旧门诊', 2: '内科旧门诊（已撤销）', 3: 'C^门诊^HL70260', 4: '示例市第一人民医院' }),
    ],
  },
  {
    file: '11-mfn-m02-staff.hl7', type: 'MFN^M02', controlId: 'HIS202503130011', ...UTF8,
    description: 'Staff dictionary: add 陈静, update 李建国 (title), delete 周文 (retired) (MFE/STF/PRA)',
    expects: { consent: false, routes: ['recognition-dict'] },
    segments: () => [
      msh({ app: 'HIS', time: '20250313081500', type: 'MFN^M02^MFN_M02', controlId: 'HIS202503130011', charset: UTF8.msh18 }),
      seg('MFI', { 1: 'PRA^人员字典^HL70175', 3: 'UPD', 6: 'AL' }),
      seg('MFE', { 1: 'MAD', 2: 'MFN0101', 3: '20250313081500', 4: D.chen, 5: 'CWE' }),
      seg('STF', {
        1: 'D0025^陈静^HOSP', 2: `D0025^^^HOSP^EI~${STAFF_ID.chen}^^^CHN^NI`, 3: '陈^静', 4: 'MD^医生^HL70182', 5: 'F',
        6: '19860214', 7: 'A', 8: '0302^呼吸内科门诊', 10: '13800000025^WPN^CP',
      }),
      seg('PRA', { 1: D.chen, 3: 'CONS^主治医师', 5: '呼吸内科', 6: '110440000000025^执业证书编号' }),
      seg('MFE', { 1: 'MUP', 2: 'MFN0102', 3: '20250313081500', 4: D.li, 5: 'CWE' }),
      seg('STF', {
        1: 'D0012^李建国^HOSP', 2: `D0012^^^HOSP^EI~${STAFF_ID.li}^^^CHN^NI`, 3: '李^建国', 4: 'MD^医生^HL70182', 5: 'M',
        6: '19750809', 7: 'A', 8: '0301^内科门诊', 10: '13800000012^WPN^CP',
      }),
      seg('PRA', { 1: D.li, 3: 'CHIEF^主任医师', 5: '内科', 6: '110440000000012^执业证书编号' }),
      seg('MFE', { 1: 'MDL', 2: 'MFN0103', 3: '20250313081500', 4: D.zhou, 5: 'CWE' }),
      seg('STF', {
        1: 'D0099^周文^HOSP', 2: `D0099^^^HOSP^EI~${STAFF_ID.zhou}^^^CHN^NI`, 3: '周^文', 4: 'MD^医生^HL70182', 5: 'M',
        6: '19590303', 7: 'I', 8: '0301^内科门诊',
      }),
    ],
  },
  {
    file: '12-orm-o01-new-order-lab-exam.hl7', type: 'ORM^O01', controlId: 'HIS202503120012', ...GB18030,
    description: 'New orders (ORC-1=NW) for 张三丰: lab item 血常规 (OBR-24=LAB) and exam item 胸部CT平扫 (OBR-24=CT), v2.4',
    expects: { consent: false, routes: ['recognition-check'] },
    segments: () => [
      msh({ app: 'HIS', time: '20250312100005', type: 'ORM^O01^ORM_O01', controlId: 'HIS202503120012', version: '2.4', charset: GB18030.msh18 }),
      pid(P.zhang),
      PV1_ZHANG,
      seg('ORC', {
        1: 'NW', 2: 'ORD20250312001^HIS', 4: 'GRP20250312001^HIS', 5: 'SC', 7: '^^^20250312100000^^R', 9: '20250312100000',
        10: D.clerk, 12: D.li, 13: '0301^^^内科门诊',
      }),
      seg('OBR', {
        1: '1', 2: 'ORD20250312001^HIS', 4: 'LAB0001^血常规^HOSP_LAB', 5: 'R', 6: '20250312100000', 15: 'BLD&全血&HL70070',
        16: D.li, 24: 'LAB', 27: '^^^20250312100000^^R',
      }),
      seg('ORC', {
        1: 'NW', 2: 'ORD20250312002^HIS', 4: 'GRP20250312001^HIS', 5: 'SC', 7: '^^^20250312100000^^R', 9: '20250312100000',
        10: D.clerk, 12: D.li, 13: '0301^^^内科门诊',
      }),
      seg('OBR', {
        1: '2', 2: 'ORD20250312002^HIS', 4: 'RIS0101^胸部CT平扫^HOSP_RIS', 5: 'R', 6: '20250312100000', 13: '咳嗽两周，排除肺部感染',
        16: D.li, 24: 'CT', 27: '^^^20250312100000^^R', 31: 'R05^咳嗽^ICD10',
      }),
    ],
  },
  {
    file: '13-orm-o01-cancel-order.hl7', type: 'ORM^O01', controlId: 'HIS202503120013', ...GBK,
    description: 'Order cancel (ORC-1=CA) of 尿常规 for 张三丰 at the patient\'s request, v2.4',
    expects: { consent: false, routes: [] },
    segments: () => [
      msh({ app: 'HIS', time: '20250312101030', type: 'ORM^O01^ORM_O01', controlId: 'HIS202503120013', version: '2.4', charset: GBK.msh18 }),
      pid(P.zhang),
      PV1_ZHANG,
      seg('ORC', {
        1: 'CA', 2: 'ORD20250312003^HIS', 4: 'GRP20250312001^HIS', 5: 'CA', 9: '20250312101030', 10: D.clerk, 12: D.li,
        13: '0301^^^内科门诊', 16: 'PAT^患者要求取消',
      }),
      seg('OBR', { 1: '1', 2: 'ORD20250312003^HIS', 4: 'LAB0005^尿常规^HOSP_LAB', 5: 'R', 6: '20250312100000', 16: D.li, 24: 'LAB' }),
    ],
  },
  {
    file: '14-oml-o21-new-lab-order.hl7', type: 'OML^O21', controlId: 'HIS202503120014', ...UTF8,
    description: 'New lab order (OML^O21, ORC-1=NW) of 肝功能 for 李四',
    expects: { consent: false, routes: ['recognition-check'] },
    segments: () => [
      msh({ app: 'HIS', time: '20250312095510', type: 'OML^O21^OML_O21', controlId: 'HIS202503120014', charset: UTF8.msh18 }),
      pid(P.li, ['PI', 'NI', 'PPN']),
      seg('PV1', { 1: '1', 2: 'O', 3: '0302^^^呼吸内科门诊', 7: D.chen, 19: 'V20250312002' }),
      seg('ORC', { 1: 'NW', 2: 'ORD20250312004^HIS', 5: 'SC', 9: '20250312095500', 10: D.clerk, 12: D.chen, 13: '0302^^^呼吸内科门诊' }),
      seg('OBR', { 1: '1', 2: 'ORD20250312004^HIS', 4: 'LAB0003^肝功能^HOSP_LAB', 5: 'R', 6: '20250312095500', 16: D.chen, 24: 'LAB' }),
    ],
  },
];
