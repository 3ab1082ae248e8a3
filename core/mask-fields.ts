/**
 * What is masked, by meaning: the one list of values that identify a person
 * (ID numbers, names, phones, addresses, birth dates, medical record and
 * account numbers). Coded values that identify nobody (assigning authority,
 * identifier type code, country, sex, marital status, address type, phone
 * use code...) are not on it and are shown as they are.
 *
 * Three readers share it:
 * - the console's HL7 tree (core/ops/console/hl7-tree.ts) masks the listed
 *   HL7 fields, and only the listed components of them;
 * - the console's JSON view (core/ops/console/json-view.ts) masks values
 *   under keys matching KEY_PATTERNS;
 * - the log (core/log.ts) redacts LOG_KEYS by name; every log line is also
 *   scrubbed for ID-number- and mobile-shaped text (core/mask.ts).
 *
 * docs/operations.md ("What the console and the logs mask") prints this list;
 * change both together.
 */

/** How a masked value is shown. */
export type MaskKind = 'idNumber' | 'id' | 'name' | 'phone' | 'address' | 'birthDate';

export interface MaskedField {
  /** Segment name (PID, NK1...). */
  segment: string;
  /** Field number (HL7 numbering: PID-5 is 5). */
  field: number;
  kind: MaskKind;
  /**
   * Components masked (1-based); the others are codes and stay as they are.
   * Undefined: the whole field (every component) is masked.
   */
  components?: number[];
  /** What it is, for the docs and the tests. */
  what: string;
}

/** CX (extended identifier): only the ID number (.1) and check digit (.2); .4 assigning authority and .5 identifier type are codes. */
const CX = [1, 2];
/** XPN (person name): family name, given names, suffix, prefix; .7 name type code is a code. */
const XPN = [1, 2, 3, 4, 5];
/** XAD (address): street, other designation, city, postal code, other geographic designation; .4 province, .6 country, .7 address type, .9 county code are codes. */
const XAD = [1, 2, 3, 5, 8];
/** XTN (phone): number, e-mail, country/area/local number, extension, text, unformatted number; .2 use code and .3 equipment type are codes. */
const XTN = [1, 4, 5, 6, 7, 8, 9, 12];
/** XCN (person with an id): id number, family name, given names; the rest are codes. */
const XCN = [1, 2, 3, 4];

export const MASKED_FIELDS: readonly MaskedField[] = [
  { segment: 'PID', field: 2, kind: 'id', components: CX, what: 'patient ID (external)' },
  { segment: 'PID', field: 3, kind: 'id', components: CX, what: 'patient identifier list (medical record number, resident ID number, passport)' },
  { segment: 'PID', field: 4, kind: 'id', components: CX, what: 'alternate patient ID' },
  { segment: 'PID', field: 5, kind: 'name', components: XPN, what: 'patient name' },
  { segment: 'PID', field: 6, kind: 'name', components: XPN, what: "mother's maiden name" },
  { segment: 'PID', field: 7, kind: 'birthDate', what: 'date of birth' },
  { segment: 'PID', field: 9, kind: 'name', components: XPN, what: 'patient alias' },
  { segment: 'PID', field: 11, kind: 'address', components: XAD, what: 'patient address' },
  { segment: 'PID', field: 13, kind: 'phone', components: XTN, what: 'home phone' },
  { segment: 'PID', field: 14, kind: 'phone', components: XTN, what: 'business phone' },
  { segment: 'PID', field: 18, kind: 'id', components: CX, what: 'patient account number' },
  { segment: 'PID', field: 19, kind: 'idNumber', what: 'SSN / national ID number' },
  { segment: 'PID', field: 20, kind: 'id', components: [1], what: "driver's licence number" },
  { segment: 'PID', field: 21, kind: 'id', components: CX, what: "mother's identifier" },
  { segment: 'PID', field: 23, kind: 'address', what: 'birth place' },
  { segment: 'PID', field: 29, kind: 'birthDate', what: 'date of death' },
  { segment: 'PD1', field: 4, kind: 'name', components: XCN, what: 'primary care provider' },
  { segment: 'NK1', field: 2, kind: 'name', components: XPN, what: 'next of kin name' },
  { segment: 'NK1', field: 4, kind: 'address', components: XAD, what: 'next of kin address' },
  { segment: 'NK1', field: 5, kind: 'phone', components: XTN, what: 'next of kin phone' },
  { segment: 'NK1', field: 6, kind: 'phone', components: XTN, what: 'next of kin business phone' },
  { segment: 'NK1', field: 16, kind: 'birthDate', what: 'next of kin date of birth' },
  { segment: 'NK1', field: 30, kind: 'name', components: XPN, what: 'contact person name' },
  { segment: 'NK1', field: 31, kind: 'phone', components: XTN, what: 'contact person phone' },
  { segment: 'NK1', field: 32, kind: 'address', components: XAD, what: 'contact person address' },
  { segment: 'NK1', field: 33, kind: 'id', components: CX, what: 'next of kin identifiers' },
  { segment: 'NK1', field: 37, kind: 'idNumber', what: 'contact person ID number' },
  { segment: 'MRG', field: 1, kind: 'id', components: CX, what: 'prior patient identifier list' },
  { segment: 'MRG', field: 2, kind: 'id', components: CX, what: 'prior alternate patient ID' },
  { segment: 'MRG', field: 3, kind: 'id', components: CX, what: 'prior patient account number' },
  { segment: 'MRG', field: 4, kind: 'id', components: CX, what: 'prior patient ID' },
  { segment: 'MRG', field: 7, kind: 'name', components: XPN, what: 'prior patient name' },
  { segment: 'GT1', field: 2, kind: 'id', components: CX, what: 'guarantor number' },
  { segment: 'GT1', field: 3, kind: 'name', components: XPN, what: 'guarantor name' },
  { segment: 'GT1', field: 5, kind: 'address', components: XAD, what: 'guarantor address' },
  { segment: 'GT1', field: 6, kind: 'phone', components: XTN, what: 'guarantor home phone' },
  { segment: 'GT1', field: 7, kind: 'phone', components: XTN, what: 'guarantor business phone' },
  { segment: 'GT1', field: 8, kind: 'birthDate', what: 'guarantor date of birth' },
  { segment: 'GT1', field: 12, kind: 'idNumber', what: 'guarantor SSN / ID number' },
  { segment: 'IN1', field: 16, kind: 'name', components: XPN, what: 'name of insured' },
  { segment: 'IN1', field: 18, kind: 'birthDate', what: "insured's date of birth" },
  { segment: 'IN1', field: 19, kind: 'address', components: XAD, what: "insured's address" },
  { segment: 'IN1', field: 36, kind: 'id', what: 'policy number' },
  { segment: 'IN1', field: 49, kind: 'id', components: CX, what: "insured's ID number" },
  { segment: 'IN2', field: 2, kind: 'idNumber', what: "insured's SSN / ID number" },
  { segment: 'ROL', field: 4, kind: 'name', components: XCN, what: 'role person' },
  // Staff master data (MFN^M02): a staff member's private data; their names stay shown, as in PV1-7 or OBR-16.
  { segment: 'STF', field: 2, kind: 'id', components: CX, what: 'staff identifier list (resident ID number)' },
  { segment: 'STF', field: 6, kind: 'birthDate', what: 'staff date of birth' },
  { segment: 'STF', field: 10, kind: 'phone', components: XTN, what: 'staff phone' },
  { segment: 'STF', field: 11, kind: 'address', components: XAD, what: 'staff office/home address' },
];

/** The list by segment and field, for lookups per field (built once). */
const BY_POSITION = new Map<string, MaskedField>(MASKED_FIELDS.map((f) => [`${f.segment}-${f.field}`, f]));

/** The rule for one HL7 field, if it is masked. */
export function maskedField(segment: string, field: number): MaskedField | undefined {
  return BY_POSITION.get(`${segment}-${field}`);
}

/**
 * Keys of JSON events (and of any object) whose values are masked, by kind,
 * tested in this order. Objects under PERSON_KEYS describe a person: every
 * value in them is masked except HARMLESS_KEYS (codes).
 */
export const KEY_PATTERNS: readonly { kind: MaskKind; pattern: RegExp }[] = [
  { kind: 'idNumber', pattern: /(idnumber|idno|idcard|id_card|id_number|sfz|certno|cert_no|certnumber|cardno|card_no|identity)/i },
  { kind: 'name', pattern: /^(name|patientname|patient_name|fullname|full_name|xm|familyname|givenname|contactname|guardianname)$/i },
  { kind: 'phone', pattern: /(phone|mobile|tel)/i },
  { kind: 'address', pattern: /(address|addr)/i },
  { kind: 'birthDate', pattern: /^(birthdate|birth_date|birthday|dob|csrq)$/i },
  { kind: 'id', pattern: /^(patientid|patient_id|mrn|pid|visitid|inpatientno|outpatientno)$/i },
];
export const PERSON_KEYS = /^(patient|person|contact|guardian|nextofkin|nk1|relative|insured|guarantor)$/i;
export const HARMLESS_KEYS = /^(gender|sex|gendercode|sexcode|marital|maritalstatus|country|nationality|idtype|cardtype)$/i;

/** The kind of a key's value, if a key of that name is masked. */
export function maskedKey(key: string): MaskKind | undefined {
  for (const k of KEY_PATTERNS) if (k.pattern.test(key)) return k.kind;
  return undefined;
}

/**
 * Keys that the log redacts by name, at the top level and one level down
 * (`*.key`). Each one is also masked by KEY_PATTERNS (a unit test checks it).
 * `address` is not among them: log lines use it for a client's network
 * address, which is not PHI.
 */
export const LOG_KEYS: readonly string[] = [
  'idcard', 'idCard', 'patientIdcard', 'idNumber', 'patientName', 'name', 'phone', 'mobile',
  'patientAddress', 'homeAddress', 'birthDate', 'birthday', 'dob', 'mrn',
];
