/**
 * Several institutions per engine (issue 16), shared by the platform
 * families that hold one account per institution (gdEhr, recognition).
 *
 * A section either holds today's single credential set (one implicit
 * institution that every sender goes out under) or an `institutions:` list of
 * profiles, each with its own credentials and the sending facilities (MSH-4)
 * whose messages go out under it. Keys shared by all profiles stay at the
 * section level and a profile may override them.
 *
 * A message picks its institution by a step's fixed `institution: <orgCode>`,
 * else by MSH-4 (whole or its first component) in some profile's `senders`.
 * A message no institution claims is refused with the family's own error: it
 * is never sent under another institution's credentials. A workstation
 * request names its institution with `orgCode` (required when several are
 * configured); an API client limited by `institutions: [...]` is refused for
 * any other.
 */
import { hbError, type StepInput } from '../../core/sdk.js';

/** What every institution profile has: its code and the MSH-4 values it sends under. */
export interface InstitutionProfile {
  orgCode: string;
  /** Sending facilities (MSH-4); empty = every sender (only the implicit institution of the single set). */
  senders: readonly string[];
}

/** The institutions of one section, looked up by orgCode or by sending facility. */
export interface Institutions<T extends InstitutionProfile> {
  readonly list: readonly T[];
  /** True when the section has no `institutions` list: the single set is the one institution, for every sender. */
  readonly implicit: boolean;
  byOrgCode(orgCode: string): T | undefined;
  /** The institution that lists this sending facility (or the implicit one); undefined when none does. */
  bySender(facility: string): T | undefined;
}

/** The profiles written under `section.institutions`, or undefined when there is no list. */
export function profilesOf(section: Readonly<Record<string, unknown>>): Record<string, unknown>[] | undefined {
  const p = section.institutions;
  return Array.isArray(p) && p.length > 0 ? (p as Record<string, unknown>[]) : undefined;
}

/**
 * Each profile with the section's `sharedKeys` merged under it (the
 * profile's own non-empty values win), given with its index.
 */
export function mergedProfiles(section: Readonly<Record<string, unknown>>, sharedKeys: readonly string[]): { merged: Record<string, unknown>; profile: Record<string, unknown>; index: number }[] {
  const shared: Record<string, unknown> = {};
  for (const k of sharedKeys) if (section[k] !== undefined) shared[k] = section[k];
  return (profilesOf(section) ?? []).map((profile, index) => {
    const merged: Record<string, unknown> = { ...shared };
    for (const [k, v] of Object.entries(profile ?? {})) if (v !== undefined && v !== '') merged[k] = v;
    return { merged, profile, index };
  });
}

/** The `senders` list of a written profile (strings only). */
export function sendersOf(profile: Readonly<Record<string, unknown>>): string[] {
  return Array.isArray(profile.senders) ? (profile.senders as unknown[]).filter((x): x is string => typeof x === 'string') : [];
}

/**
 * The lookup over `list`. With `implicit`, the one institution matches every
 * sender. Otherwise a sender listed twice goes to the first profile that lists
 * it (institutionProblems refuses such a config at load).
 */
export function indexInstitutions<T extends InstitutionProfile>(list: readonly T[], implicit: boolean): Institutions<T> {
  const orgs = new Map(list.map((x) => [x.orgCode, x]));
  const senders = new Map<string, T>();
  for (const x of list) for (const s of x.senders) if (!senders.has(s)) senders.set(s, x);
  return {
    list,
    implicit,
    byOrgCode: (o) => orgs.get(o),
    bySender: (f) => (implicit ? list[0] : senders.get(f)),
  };
}

/**
 * Problems the schema cannot express, each with the path (inside the
 * section) it is reported at: a duplicate orgCode, a sender listed by two
 * institutions, and the single set's credential keys written beside a list.
 */
export function institutionProblems(
  sectionName: string,
  credentialKeys: readonly string[],
  section: Readonly<Record<string, unknown>>,
): { path: (string | number)[]; message: string }[] {
  const profiles = profilesOf(section) ?? [];
  if (profiles.length === 0) return [];
  const out: { path: (string | number)[]; message: string }[] = [];
  for (const k of credentialKeys) {
    if (section[k] !== undefined) out.push({ path: [k], message: `${sectionName}.${k}: with ${sectionName}.institutions, each institution carries its own ${k}; remove it here` });
  }
  const orgAt = new Map<string, number>();
  const senderAt = new Map<string, number>();
  profiles.forEach((p, i) => {
    if (!p || typeof p !== 'object') return;
    const org = typeof p.orgCode === 'string' ? p.orgCode : undefined;
    if (org !== undefined) {
      const first = orgAt.get(org);
      if (first !== undefined) out.push({ path: ['institutions', i, 'orgCode'], message: `${sectionName}.institutions[${i}].orgCode: "${org}" is also the orgCode of institutions[${first}]` });
      else orgAt.set(org, i);
    }
    const senders = Array.isArray(p.senders) ? p.senders : [];
    senders.forEach((s, j) => {
      if (typeof s !== 'string') return;
      const first = senderAt.get(s);
      if (first !== undefined && first !== i) out.push({ path: ['institutions', i, 'senders', j], message: `${sectionName}.institutions[${i}].senders: sender "${s}" is also listed by institutions[${first}]` });
      else if (first === undefined) senderAt.set(s, i);
    });
  });
  return out;
}

/** A sender value fit for an error text: short, printable (MSH-4 is a facility code, not patient data). */
export function safeSender(v: string): string {
  const s = v.slice(0, 40).replace(/[^\x20-\x7e\u4e00-\u9fff]/g, '?');
  return s || '(empty MSH-4)';
}

/** The picker of one step: which institution a message goes out under. */
export interface InstitutionPicker<T extends InstitutionProfile> {
  /** The institution for this message; throws the family's "no institution" error. */
  pick(input: StepInput): T;
}

/**
 * The picker of one step. `fixed` (the step's `institution:`) must name a
 * configured orgCode: ROUTE_E_PLUGIN_CONFIG otherwise, so the route does not
 * load. `noInstitution` makes the family's error for a sender no institution
 * lists, given the (cleaned) MSH-4 value or a note that the input is not HL7.
 */
export function institutionPicker<T extends InstitutionProfile>(
  all: Institutions<T>,
  fixed: string | undefined,
  opts: { pluginName: string; sectionName: string; noInstitution: (sender: string) => Error },
): InstitutionPicker<T> {
  if (fixed !== undefined) {
    const inst = all.byOrgCode(fixed);
    if (!inst) throw hbError('ROUTE_E_PLUGIN_CONFIG', { name: opts.pluginName, detail: `institution "${safeSender(fixed)}" is not a ${opts.sectionName} institution orgCode (known: ${all.list.map((x) => x.orgCode).join(', ')})` });
    return { pick: () => inst };
  }
  if (all.implicit) return { pick: () => all.list[0]! };
  return {
    pick(input) {
      const facility = input.hl7 ? input.hl7.get('MSH-4') : '';
      const first = input.hl7 ? input.hl7.sendingFacility : '';
      const inst = (facility ? all.bySender(facility) : undefined) ?? (first ? all.bySender(first) : undefined);
      if (!inst) throw opts.noInstitution(input.hl7 ? safeSender(facility) : '(not an HL7 message: set institution: on the step)');
      return inst;
    },
  };
}

/** The family's errors for a workstation request's institution. */
export interface RequestInstitutionErrors {
  /** Several institutions are configured and the request names none. */
  required: () => Error;
  /** The request names an orgCode no institution has (given cleaned and short). */
  unknown: (orgCode: string) => Error;
  /** The API client is limited to other institutions. */
  forbidden: (orgCode: string) => Error;
}

/**
 * The institution of one workstation request: `orgCode` (required when
 * several are configured, else the single one), which the API client must be
 * allowed (`api.clients[].institutions`, EndpointRequest.institutions). The
 * orgCode is echoed in errors only when it is a configured one; anything
 * else is shown cleaned and short.
 */
export function requestInstitution<T extends InstitutionProfile>(all: Institutions<T>, orgCode: string | undefined, allowed: readonly string[] | undefined, errors: RequestInstitutionErrors): T {
  let inst: T | undefined;
  if (orgCode === undefined || orgCode === '') {
    if (all.list.length > 1) throw errors.required();
    inst = all.list[0]!;
  } else {
    inst = all.byOrgCode(orgCode);
    if (!inst) throw errors.unknown(orgCode.slice(0, 32).replace(/[^\w.-]/g, '?'));
  }
  if (allowed && !allowed.includes(inst.orgCode)) throw errors.forbidden(inst.orgCode);
  return inst;
}

/**
 * `hisbridge doctor` over a section: the single set probed once under the
 * label `<sectionName>`, or every profile (shared keys merged under it)
 * under `<sectionName>[<orgCode>]`, each with its own credentials.
 */
export async function probeEachInstitution<C>(
  section: Readonly<Record<string, unknown>>,
  sectionName: string,
  sharedKeys: readonly string[],
  probeOne: (section: Readonly<Record<string, unknown>>, label: string) => Promise<C[]>,
): Promise<C[]> {
  if (!profilesOf(section)) return probeOne(section, sectionName);
  const checks: C[] = [];
  for (const { merged, profile, index } of mergedProfiles(section, sharedKeys)) {
    checks.push(...(await probeOne(merged, `${sectionName}[${typeof profile.orgCode === 'string' ? profile.orgCode : index}]`)));
  }
  return checks;
}

/**
 * The distinct values of a URL key actually in use: without profiles the
 * section's own; with them each profile's own value, or the section's for a
 * profile that does not set one. For the health probe of every remote.
 */
export function urlsInUse(section: Readonly<Record<string, unknown>>, key: string): string[] {
  const own = typeof section[key] === 'string' ? (section[key] as string) : undefined;
  const profiles = profilesOf(section);
  const urls = profiles ? profiles.map((p) => (typeof p[key] === 'string' ? (p[key] as string) : own)) : [own];
  return [...new Set(urls.filter((u): u is string => u !== undefined && u !== ''))];
}
