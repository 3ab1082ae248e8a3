/**
 * The synthetic people in the samples. Every identifier is made up: ID
 * numbers use real Guangdong area codes and a correct check character but
 * belong to nobody we know of; phones are 1380000xxxx; passports and licence
 * numbers are placeholders.
 */
import { idNumber } from './hl7-build.mjs';

/** Builds a patient; `seq` is the 3-digit sequence of the ID number (odd last digit = male). */
function patient(o) {
  return {
    ...o,
    idNumber: idNumber(o.area, o.birth, o.seq),
    marital: o.marital ?? '20^已婚^GB/T2261.2',
  };
}

export const P = {
  /** 张三丰: registration with consent, orders, lab and exam reports. */
  zhang: patient({
    patientId: 'P000100001', name: '张^三丰', birth: '19900315', sex: 'M', area: '440106', seq: '231',
    phone: '13800000001', address: '天河区示例路1号^^广州市^广东省^510630^CHN^H',
  }),
  /** 李四: whole name in PID-5.1, passport, no consent. */
  li: patient({
    patientId: 'P000100002', name: '李四', birth: '19850722', sex: 'F', area: '440104', seq: '342',
    phone: '13800000002', address: '越秀区示例街2号^^广州市^广东省^510030^CHN^H', passport: 'E10000001',
    marital: '10^未婚^GB/T2261.2',
  }),
  /** 王小明: driving licence in PID-3, MDM report. */
  wang: patient({
    patientId: 'P000100003', name: '王^小明', birth: '19781102', sex: 'M', area: '440305', seq: '117',
    phone: '13800000003', address: '南山区示例大道3号^^深圳市^广东省^518052^CHN^H', licence: '440300000003',
  }),
  /** 陈美玲: online booking with consent, later withdrawn. */
  chen: patient({
    patientId: 'P000100004', name: '陈^美玲', birth: '19950130', sex: 'F', area: '441302', seq: '208',
    phone: '13800000004', address: '惠城区示例路4号^^惠州市^广东省^516001^CHN^H', marital: '10^未婚^GB/T2261.2',
  }),
  /** 區億華: GBK second bytes are `^` (區 = 85 5E) and `|` (億 = 83 7C). */
  ou: patient({
    patientId: 'P000100005', name: '區^億華', birth: '19690508', sex: 'M', area: '440604', seq: '151',
    phone: '13800000005', address: '禅城区示例街5号^^佛山市^广东省^528000^CHN^H', licence: '440600000005',
  }),
  /** 黄志强: tuberculosis lab report (sensitive). */
  huang: patient({
    patientId: 'P000100006', name: '黄^志强', birth: '19580912', sex: 'M', area: '440111', seq: '073',
    phone: '13800000006', address: '白云区示例路6号^^广州市^广东省^510440^CHN^H',
  }),
  /** 林晓燕: HIV lab report (sensitive). */
  lin: patient({
    patientId: 'P000100007', name: '林^晓燕', birth: '19921205', sex: 'F', area: '440303', seq: '326',
    phone: '13800000007', address: '罗湖区示例街7号^^深圳市^广东省^518001^CHN^H', marital: '10^未婚^GB/T2261.2',
  }),
  /** 欧阳娜娜: compound family name, inpatient admission with consent. */
  ouyang: patient({
    patientId: 'P000100008', name: '欧阳^娜娜', birth: '20010418', sex: 'F', area: '440113', seq: '284',
    phone: '13800000008', address: '番禺区示例路8号^^广州市^广东省^511400^CHN^H', marital: '10^未婚^GB/T2261.2',
  }),
  /** 刘德明: whole name in PID-5.1, pre-admission with consent. */
  liu: patient({
    patientId: 'P000100009', name: '刘德明', birth: '19730620', sex: 'M', area: '441303', seq: '035',
    phone: '13800000009', address: '惠阳区示例大道9号^^惠州市^广东省^516211^CHN^H',
  }),
};

/** Staff as XCN (id^family^given). */
export const D = {
  li: 'D0012^李^建国',
  chen: 'D0025^陈^静',
  he: 'D0030^何^振华',
  zhou: 'D0099^周^文',
  labTech: 'T0101^赵^敏',
  labReviewer: 'T0102^钱^磊',
  radiologist: 'R0201^孙^伟',
  radReviewer: 'R0202^吴^芳',
  clerk: 'OP001^王^芳',
};

/** Staff ID numbers, for the staff dictionary (MFN^M02). */
export const STAFF_ID = {
  chen: idNumber('440106', '19860214', '062'),
  li: idNumber('440104', '19750809', '115'),
  zhou: idNumber('440102', '19590303', '091'),
};
