/**
 * Small building blocks for the synthetic sample messages: segments from
 * field maps, MSH, PID, a check-digit-correct resident ID number and a
 * minimal but valid PDF. Deterministic on purpose: the samples are regenerated
 * byte-for-byte by `node samples/tools/make-samples.mjs` and a test checks it.
 */

/**
 * One segment from a name and a map of field number -> value. Missing
 * numbers become empty fields; trailing empty fields are dropped, as most
 * senders do.
 * @param {string} name
 * @param {Record<number, string>} fields
 */
export function seg(name, fields) {
  const max = Math.max(0, ...Object.keys(fields).map(Number));
  const out = [name];
  for (let i = 1; i <= max; i++) out.push(fields[i] ?? '');
  while (out.length > 1 && out[out.length - 1] === '') out.pop();
  return out.join('|');
}

/**
 * MSH with the fields the samples vary. MSH-1 is the `|` between `MSH` and
 * MSH-2, so the array below starts at MSH-2.
 */
export function msh({ app, facility = 'H4413020001', time, type, controlId, version = '2.5', charset = '', acceptAck = '', appAck = '' }) {
  const fields = ['MSH', '^~\\&', app, facility, 'HISBRIDGE', 'GDPLAT', time, '', type, controlId, 'P', version, '', '', acceptAck, appAck, 'CHN', charset];
  while (fields[fields.length - 1] === '') fields.pop();
  return fields.join('|');
}

const ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK = '10X98765432';

/** ISO 7064 MOD 11-2 check character of the first 17 digits of a resident ID number. */
export function idCheckChar(first17) {
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += Number(first17[i]) * ID_WEIGHTS[i];
  return ID_CHECK[sum % 11];
}

/** A made-up 18-character resident ID number: area code + birth date (YYYYMMDD) + sequence + check char. */
export function idNumber(area, birth, seq) {
  const first17 = `${area}${birth}${seq}`;
  if (!/^\d{17}$/.test(first17)) throw new Error(`bad ID number parts ${area}/${birth}/${seq}`);
  return first17 + idCheckChar(first17);
}

/**
 * PID segment from a synthetic patient. `ids` picks which identifiers go
 * into PID-3 and in which order (PI = hospital id, NI = ID number, PPN, DL).
 */
export function pid(p, ids = ['PI', 'NI']) {
  const reps = ids.map((t) => {
    if (t === 'PI') return `${p.patientId}^^^HOSP^PI`;
    if (t === 'NI') return `${p.idNumber}^^^CHN^NI`;
    if (t === 'PPN') return `${p.passport}^^^CHN^PPN`;
    if (t === 'DL') return `${p.licence}^^^CHN^DL`;
    throw new Error(`unknown id type ${t}`);
  });
  return seg('PID', {
    1: '1',
    3: reps.join('~'),
    5: p.name,
    7: p.birth,
    8: p.sex,
    11: p.address,
    13: `${p.phone}^PRN^CP`,
    16: p.marital,
    22: '01^汉族^GB3304',
    28: 'CHN^中国^ISO3166',
  });
}

/**
 * A minimal PDF 1.4 with one page and one line of ASCII text, with a correct
 * cross-reference table so strict readers accept it.
 * @param {string} text ASCII only (no parentheses or backslashes)
 * @returns {Buffer}
 */
export function minimalPdf(text) {
  if (!/^[\x20-\x7e]*$/.test(text) || /[()\\]/.test(text)) throw new Error('PDF text must be plain ASCII');
  const stream = `BT /F1 12 Tf 56 780 Td (${text}) Tj ET`;
  const objects = [
    '<</Type/Catalog/Pages 2 0 R>>',
    '<</Type/Pages/Kids[3 0 R]/Count 1>>',
    '<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]/Resources<</Font<</F1 4 0 R>>>>/Contents 5 0 R>>',
    '<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>',
    `<</Length ${stream.length}>>\nstream\n${stream}\nendstream`,
  ];
  let body = '%PDF-1.4\n';
  const offsets = [];
  objects.forEach((o, i) => {
    offsets.push(body.length);
    body += `${i + 1} 0 obj\n${o}\nendobj\n`;
  });
  const xrefAt = body.length;
  body += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  for (const off of offsets) body += `${String(off).padStart(10, '0')} 00000 n \n`;
  body += `trailer\n<</Size ${objects.length + 1}/Root 1 0 R>>\nstartxref\n${xrefAt}\n%%EOF\n`;
  return Buffer.from(body, 'latin1');
}

/** OBX-5 of an ED carrying a PDF: `^application^pdf^Base64^<data>`. */
export function edPdf(text) {
  return `^application^pdf^Base64^${minimalPdf(text).toString('base64')}`;
}
