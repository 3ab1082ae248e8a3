/**
 * `hisbridge gd-ehr viewer-url --key HEX --app-id … --org-code … --staff-no …
 * --staff-name … --card-type … --idcard … --patient-name … --patient-id …
 * --call-sys-code … [--base-url …]`: builds the provincial viewer URL for
 * joint testing (联调) and prints it alone on the last line. Flags are kept stable.
 * Declared by the gdEhr site extension (`commands`); core/cli/main.ts lists
 * and dispatches it.
 */
import { isHisbridgeError, parseSubcommand, type CliCommand, type CliFlags, type CliIo } from '../../core/sdk.js';
import { buildViewerUrl, type ViewerFields } from './viewer-url.js';
import { PROVINCE_VIEWER_URL } from './site.js';

const FLAGS = {
  'org-code': 'orgCode',
  'staff-no': 'staffNo',
  'staff-name': 'staffName',
  'card-type': 'cardType',
  idcard: 'idcard',
  'patient-name': 'patientName',
  'patient-id': 'patientId',
  'call-sys-code': 'callSysCode',
} as const satisfies Record<string, keyof ViewerFields>;

const USAGE = `usage: hisbridge gd-ehr viewer-url --key HEX --app-id ID --org-code C --staff-no N --staff-name NAME
         --card-type 01 --idcard NO --patient-name NAME --patient-id ID --call-sys-code C [--base-url URL]
Prints the getPrivilege URL (param = SM4 of the eight fields in the guide's order) on the last line.
--base-url defaults to ${PROVINCE_VIEWER_URL}; --key-env NAME reads the key from the environment.`;

export async function run(argv: string[], io: CliIo): Promise<number> {
  const flags: CliFlags = Object.fromEntries(['key', 'key-env', 'app-id', 'base-url', ...Object.keys(FLAGS)].map((f) => [f, { type: 'string' }]));
  const parsed = parseSubcommand(argv, { command: 'gd-ehr', subcommands: ['viewer-url'], usage: USAGE, flags }, io);
  if (typeof parsed === 'number') return parsed;
  const v = parsed.values;
  const str = (k: string) => (typeof v[k] === 'string' ? (v[k] as string) : undefined);
  const key = str('key') ?? (str('key-env') ? process.env[str('key-env')!] : undefined);
  const missing = [key === undefined ? 'key' : undefined, str('app-id') === undefined ? 'app-id' : undefined, ...Object.keys(FLAGS).filter((f) => str(f) === undefined)].filter(Boolean);
  if (missing.length) {
    io.err(`hisbridge gd-ehr: missing --${missing.join(', --')}`);
    io.err(USAGE);
    return 2;
  }
  const fields = Object.fromEntries(Object.entries(FLAGS).map(([flag, field]) => [field, str(flag)!])) as ViewerFields;
  try {
    io.out(buildViewerUrl({ viewerUrl: str('base-url') ?? PROVINCE_VIEWER_URL, appId: str('app-id')!, sm4Key: key!, fields }));
    return 0;
  } catch (e) {
    if (!isHisbridgeError(e)) throw e;
    io.err(`hisbridge gd-ehr: ${e.code}: ${e.message}`);
    return 1;
  }
}

export const viewerUrlCommand: CliCommand = {
  name: 'gd-ehr',
  summary: 'build a provincial viewer URL: gd-ehr viewer-url --key HEX ...',
  usage: USAGE,
  run,
};
