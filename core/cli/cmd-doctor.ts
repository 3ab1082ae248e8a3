/**
 * `hisbridge doctor [--config F]`: checks a site before go-live and prints
 * each check as `OK`, `WARN` or `FAIL` with what was found and, for WARN and
 * FAIL, a fix. Exit 1 on any FAIL, 0 otherwise, 2 on a usage error.
 *
 * Checks, in order: the config validates; the routes load; the ports the
 * engine would bind are free (MLLP listeners, HTTP, the simulators when on);
 * the data directory is writable with free disk (FAIL under 1 GiB, WARN under
 * 5 GiB); the open-file limit covers the connections allowed (the MLLP
 * listeners' maxConnections + http.maxConnections + 256 for the store, remote
 * calls and Kafka); TLS certificates (http.tls, listeners[].tls: cert and ca)
 * are valid for 30 more days; and each remote platform, through its site
 * extension's `doctor` probe (a signature probe, a login: the extension says
 * what it sends), with this host's clock compared with the remote's HTTP
 * `Date` header (FAIL beyond the gateway's ±300 s window, WARN beyond 60 s).
 * Core knows nothing of the platforms: the probes live in plugins/<ext>/doctor.ts.
 */
import { X509Certificate } from 'node:crypto';
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, rmdirSync, statfsSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createHttpClient } from '../http/client.js';
import { LoadError } from '../config/yaml-source.js';
import type { SiteConfig } from '../config/site.js';
import { simulatorPort } from '../engine/sim-ports.js';
import { LOCK_FILE } from '../engine/lock.js';
import { RemoteProbes } from '../ops/health.js';
import { KafkaSource } from '../kafka/source.js';
import { closeRoutes, listRouteFiles, loadRoutes, type InactiveRoute } from '../routes/loader.js';
import type { DoctorCheck, HttpClient } from '../sdk.js';
import type { Registry } from '../registry.js';
import { err, loadConfig, offlineContext, out, parse, registry, unconfiguredSite } from './common.js';

const USAGE = `usage: hisbridge doctor [--config F]

Checks a site before go-live and prints each check as OK, WARN or FAIL, with a
fix for each WARN and FAIL: the config and routes load; the MLLP, HTTP (and
simulator) ports are free; the data directory is writable with free disk
(FAIL under 1 GiB, WARN under 5 GiB); the open-file limit covers
maxConnections; TLS certificates are valid for 30 more days; each remote
platform is reachable and accepts the credentials (each platform's own probe,
such as a signed empty request or a login), with this host's clock within ±300 s of
the remote's Date header. Exit 1 on any FAIL.

Run it as the service user, with the service's limits (docs/operations.md).`;

/** Disk space below which the data directory fails / warns. */
export const DISK_FAIL_BYTES = 1024 ** 3;
export const DISK_WARN_BYTES = 5 * 1024 ** 3;
/** File descriptors beyond the connections: the store and its WAL, remote calls, Kafka, simulators, logs. */
export const FD_HEADROOM = 256;
/** A certificate valid for fewer days than this fails. */
export const CERT_MIN_DAYS = 30;
/** The provincial gateway's timestamp window (seed 001 §5): a clock further off fails. */
export const CLOCK_FAIL_S = 300;
export const CLOCK_WARN_S = 60;
/** Time a remote probe may take in all. */
const PROBE_TIMEOUT_MS = 20_000;

const LABEL: Record<DoctorCheck['status'], string> = { ok: 'OK  ', warn: 'WARN', fail: 'FAIL' };

class Report {
  readonly counts = { ok: 0, warn: 0, fail: 0 };
  add(c: DoctorCheck): void {
    this.counts[c.status]++;
    out(`${LABEL[c.status]}  ${c.name}: ${c.detail}`);
    if (c.fix && c.status !== 'ok') out(`      fix: ${c.fix}`);
  }
}

export async function run(argv: string[]): Promise<number> {
  let values: { config?: string; help?: boolean };
  try {
    ({ values } = parse(argv, { config: { type: 'string' } }, false));
  } catch (e) {
    err(`hisbridge doctor: ${(e as Error).message}`);
    err(USAGE);
    return 2;
  }
  if (values.help) {
    out(USAGE);
    return 0;
  }
  const report = new Report();
  const reg = registry();
  let config: SiteConfig;
  const file = values.config ?? process.env.HISBRIDGE_CONFIG;
  try {
    config = loadConfig(values.config, reg);
    report.add({ name: 'config', status: 'ok', detail: file ? `${file} validates` : 'no --config: embedded defaults (a site going live has a hisbridge.yaml)' });
  } catch (e) {
    const issues = e instanceof LoadError ? e.issues.map((i) => i.toString()) : [(e as Error).message];
    report.add({ name: 'config', status: 'fail', detail: issues.join('; '), fix: 'correct the file at the positions shown (hisbridge validate --config F prints the same)' });
    return finish(report);
  }
  await checkRoutes(report, reg, config);
  checkLock(report, config);
  await checkPorts(report, reg, config);
  checkDataDir(report, config);
  checkFdLimit(report, config);
  checkCerts(report, config);
  await checkRemotes(report, reg, config);
  return finish(report);
}

function finish(report: Report): number {
  const { ok, warn, fail } = report.counts;
  out(`doctor: ${ok} ok, ${warn} warn, ${fail} fail`);
  return fail ? 1 : 0;
}

async function checkRoutes(report: Report, reg: Registry, config: SiteConfig): Promise<void> {
  const inactive: InactiveRoute[] = [];
  try {
    const files = listRouteFiles([config.routesDir]);
    const ctx = offlineContext(reg, config);
    const routes = await loadRoutes(files, {
      registry: reg,
      contextFor: (def) => ctx(def),
      sources: [...config.listeners.map((l) => l.name), ...KafkaSource.sourceNames(config.kafka)],
      unconfiguredSite: unconfiguredSite(config),
      onInactive: (r) => inactive.push(r),
    });
    await closeRoutes(routes);
    report.add({ name: 'routes', status: 'ok', detail: `${routes.length} routes load from ${config.routesDir}` });
    if (inactive.length) {
      report.add({
        name: 'routes',
        status: 'warn',
        detail: `inactive (their platform is not configured): ${inactive.map((r) => `${r.name} (${r.reason})`).join('; ')}`,
        fix: 'fine for a site not connected to that platform; otherwise configure its section',
      });
    }
  } catch (e) {
    const issues = e instanceof LoadError ? e.issues.map((i) => i.toString()) : [(e as Error).message];
    report.add({ name: 'routes', status: 'fail', detail: issues.join('; '), fix: 'hisbridge validate --config F shows each problem with file:line:col' });
  }
}

/** A running engine holds the ports doctor checks: say so once, before the port checks fail. */
function checkLock(report: Report, config: SiteConfig): void {
  const file = path.join(config.dataDir, LOCK_FILE);
  let pid: number | undefined;
  try {
    pid = Number(readFileSync(file, 'utf8').trim());
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 0) return;
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return;
  }
  report.add({ name: 'engine', status: 'warn', detail: `an engine (pid ${pid}) runs on ${config.dataDir}: the ports it holds show as in use below`, fix: 'doctor is meant for before go-live or with the engine stopped' });
}

/** Binds host:port for a moment: undefined when free, else the errno code. */
function tryBind(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve(undefined)));
  });
}

const PORT_FIX: Record<string, string> = {
  EADDRINUSE: 'stop what holds it (ss -ltnp shows the process) or choose another port',
  EACCES: 'ports below 1024 need CAP_NET_BIND_SERVICE (AmbientCapabilities= in the systemd unit) or a port from 1024 up',
  EADDRNOTAVAIL: 'the address is not one of this host\'s: check the host setting',
};

async function checkPorts(report: Report, reg: Registry, config: SiteConfig): Promise<void> {
  const wanted: { what: string; host: string; port: number }[] = [];
  for (const l of config.listeners) if (l.type === 'mllp') wanted.push({ what: `listener ${l.name}`, host: l.host, port: l.port });
  if (config.http.enabled) wanted.push({ what: 'http', host: config.http.host, port: config.http.port });
  if (config.simulators) {
    for (const ext of reg.extensions) if (ext.simulator) wanted.push({ what: `simulator ${ext.key}`, host: '127.0.0.1', port: simulatorPort(config, reg.extensions, ext.key) });
  }
  for (const w of wanted) {
    const name = `port ${w.what}`;
    if (w.port === 0) {
      report.add({ name, status: 'ok', detail: `${w.host}:0: any free port` });
      continue;
    }
    const code = await tryBind(w.host, w.port);
    if (!code) report.add({ name, status: 'ok', detail: `${w.host}:${w.port} is free` });
    else report.add({ name, status: 'fail', detail: `${w.host}:${w.port}: ${code === 'EADDRINUSE' ? 'in use' : code}`, fix: PORT_FIX[code] ?? 'check the host and port settings' });
  }
}

function gib(n: number): string {
  return `${(n / 1024 ** 3).toFixed(1)} GiB`;
}

function checkDataDir(report: Report, config: SiteConfig): void {
  const dir = config.dataDir;
  const name = 'data dir';
  // The engine creates a missing directory: then its nearest existing parent must take the new directory.
  let existing = dir;
  while (!existsSync(existing) && path.dirname(existing) !== existing) existing = path.dirname(existing);
  try {
    const st = statSync(existing);
    if (!st.isDirectory()) {
      report.add({ name, status: 'fail', detail: `${dir}: ${existing} is not a directory`, fix: 'point dataDir at a directory on a local disk' });
      return;
    }
    // A real write, not access(): root passes access() on a read-only filesystem.
    accessSync(existing, constants.W_OK | constants.X_OK);
    rmdirSync(mkdtempSync(path.join(existing, '.hisbridge-doctor-')));
    if (existing !== dir) report.add({ name, status: 'ok', detail: `${dir} does not exist yet; the engine creates it (0700) in ${existing}, which is writable` });
    else {
      const open = (st.mode & 0o077) !== 0;
      report.add(open
        ? { name, status: 'warn', detail: `${dir} is writable, with group/other permissions (mode ${(st.mode & 0o777).toString(8)})`, fix: 'the engine tightens it to 0700 at start; chmod 700 it now' }
        : { name, status: 'ok', detail: `${dir} is writable` });
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    report.add({ name, status: 'fail', detail: `${dir}: not writable (${code})`, fix: 'give the service user ownership of the directory (chown hisbridge: DIR; chmod 700 DIR) and list it in ReadWritePaths= of the systemd unit' });
    return;
  }
  try {
    const fs = statfsSync(existing);
    const free = Number(fs.bavail) * Number(fs.bsize);
    const detail = `${gib(free)} free on the filesystem of ${existing}`;
    if (free < DISK_FAIL_BYTES) report.add({ name: 'disk', status: 'fail', detail, fix: `free space or move dataDir: the store needs room for its WAL and retention (at least ${gib(DISK_WARN_BYTES)} advised)` });
    else if (free < DISK_WARN_BYTES) report.add({ name: 'disk', status: 'warn', detail, fix: `plan for more: under ${gib(DISK_WARN_BYTES)} a burst of big messages or a long outage can fill it` });
    else report.add({ name: 'disk', status: 'ok', detail });
  } catch (e) {
    report.add({ name: 'disk', status: 'warn', detail: `free space unknown (${(e as NodeJS.ErrnoException).code ?? 'error'})`, fix: 'check with df' });
  }
}

/** The soft and hard open-file limits of this process (Linux: /proc/self/limits). */
export function openFileLimits(text?: string): { soft: number; hard: number } | undefined {
  let t = text;
  if (t === undefined) {
    try {
      t = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return undefined;
    }
  }
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(t);
  if (!m) return undefined;
  const n = (v: string) => (v === 'unlimited' ? Number.POSITIVE_INFINITY : Number(v));
  return { soft: n(m[1]!), hard: n(m[2]!) };
}

function checkFdLimit(report: Report, config: SiteConfig): void {
  const mllp = config.listeners.filter((l) => l.type === 'mllp').reduce((s, l) => s + l.maxConnections, 0);
  const httpConns = config.http.enabled ? config.http.maxConnections : 0;
  const need = mllp + httpConns + FD_HEADROOM;
  const limits = openFileLimits();
  const name = 'open files';
  const sum = `MLLP maxConnections ${mllp} + http.maxConnections ${httpConns} + ${FD_HEADROOM} = ${need}`;
  if (!limits) {
    report.add({ name, status: 'warn', detail: `limit unknown (no /proc/self/limits); needed ${sum}`, fix: 'check ulimit -n for the service user' });
    return;
  }
  if (limits.soft >= need) report.add({ name, status: 'ok', detail: `limit ${limits.soft} >= ${sum}` });
  else {
    report.add({
      name,
      status: 'fail',
      detail: `limit ${limits.soft} (hard ${Number.isFinite(limits.hard) ? limits.hard : 'unlimited'}) < ${sum}`,
      fix: 'raise LimitNOFILE= in the systemd unit (deploy/hisbridge.service) or ulimit -n, or lower maxConnections; doctor reads its own limit, so run it with the service\'s limits',
    });
  }
}

function certFiles(config: SiteConfig): { where: string; file: string }[] {
  const out: { where: string; file: string }[] = [];
  if (config.http.tls) {
    out.push({ where: 'http.tls.cert', file: config.http.tls.cert });
    if (config.http.tls.ca) out.push({ where: 'http.tls.ca', file: config.http.tls.ca });
  }
  for (const l of config.listeners) {
    if (!l.tls) continue;
    out.push({ where: `listener ${l.name} tls.cert`, file: l.tls.cert });
    if (l.tls.ca) out.push({ where: `listener ${l.name} tls.ca`, file: l.tls.ca });
  }
  return out;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

function checkCerts(report: Report, config: SiteConfig, now = Date.now()): void {
  for (const { where, file } of certFiles(config)) {
    const name = `tls ${where}`;
    let pems: string[];
    try {
      pems = readFileSync(file, 'utf8').match(PEM_CERT) ?? [];
    } catch (e) {
      report.add({ name, status: 'fail', detail: `${file}: ${(e as NodeJS.ErrnoException).code ?? 'unreadable'}`, fix: 'check the path and that the service user can read it' });
      continue;
    }
    if (!pems.length) {
      report.add({ name, status: 'fail', detail: `${file}: no PEM certificate in it`, fix: 'give a PEM certificate file' });
      continue;
    }
    pems.forEach((pem, i) => {
      const label = pems.length > 1 ? `${file} #${i + 1}` : file;
      let cert: X509Certificate;
      try {
        cert = new X509Certificate(pem);
      } catch {
        report.add({ name, status: 'fail', detail: `${label}: not a readable certificate`, fix: 'replace the file' });
        return;
      }
      const until = Date.parse(cert.validTo);
      const days = Math.floor((until - now) / 86_400_000);
      const subject = cert.subject.split('\n').find((s) => s.startsWith('CN='))?.slice(3) ?? 'no CN';
      const detail = `${label} (CN ${subject}) valid until ${new Date(until).toISOString().slice(0, 10)}`;
      if (until <= now) report.add({ name, status: 'fail', detail: `${detail}: expired`, fix: 'renew the certificate now' });
      else if (days < CERT_MIN_DAYS) report.add({ name, status: 'fail', detail: `${detail}: expires in ${days} days`, fix: `renew it: doctor wants ${CERT_MIN_DAYS} days or more` });
      else report.add({ name, status: 'ok', detail: `${detail} (${days} days)` });
    });
  }
}

/** An HttpClient that counts answers and remembers the `Date` header of each with the middle of its request's time. */
function watchDates(base: HttpClient): { http: HttpClient; dates: { date: number; mid: number }[]; answers: () => number } {
  const dates: { date: number; mid: number }[] = [];
  let answers = 0;
  return {
    dates,
    answers: () => answers,
    http: {
      async request(url, opts) {
        const t0 = Date.now();
        const res = await base.request(url, opts);
        answers++;
        const d = res.headers.date ? Date.parse(res.headers.date) : Number.NaN;
        if (Number.isFinite(d)) dates.push({ date: d, mid: (t0 + Date.now()) / 2 });
        return res;
      },
    },
  };
}

/** Seconds the remote's clock is ahead of ours (negative: behind), from Date headers; undefined without one. */
export function clockSkewSeconds(dates: readonly { date: number; mid: number }[]): number | undefined {
  if (!dates.length) return undefined;
  // Date has whole seconds: a header says [date, date + 1 s); take the middle.
  const last = dates[dates.length - 1]!;
  return (last.date + 500 - last.mid) / 1000;
}

async function checkRemotes(report: Report, reg: Registry, config: SiteConfig): Promise<void> {
  const withRemote = reg.extensions.filter((x) => x.doctor || x.health);
  if (config.simulators) {
    report.add({
      name: 'remotes',
      status: 'warn',
      detail: `simulators: true: ${withRemote.map((x) => x.key).join(', ')} are the built-in simulators, not the platforms; nothing probed`,
      fix: 'for go-live set simulators: false and configure each platform\'s section',
    });
    return;
  }
  const base = createHttpClient();
  try {
    for (const ext of withRemote) {
      const section = config.sections[ext.key] ?? {};
      if (!Object.keys(section).length) {
        report.add({ name: ext.key, status: 'warn', detail: 'not configured: the routes that need it load inactive', fix: `fine for a site not connected to it; otherwise write the ${ext.key} section` });
        continue;
      }
      const site = { ...ext.defaults({}), ...section };
      if (!ext.doctor) {
        const url = ext.health?.(site)?.url;
        if (!url) continue;
        const st = (await new RemoteProbes({ [ext.key]: url }).refresh())[ext.key];
        report.add(st?.reachable
          ? { name: `${ext.key}: reachable`, status: 'ok', detail: `${st.target} accepts TCP connections (no credential probe for this platform)` }
          : { name: `${ext.key}: reachable`, status: 'fail', detail: `${st?.target ?? url}: ${st?.detail ?? 'unreachable'}`, fix: 'check the URL, DNS and the firewall' });
        continue;
      }
      const watched = watchDates(base);
      const ctl = new AbortController();
      const timer = setTimeout(() => ctl.abort(), PROBE_TIMEOUT_MS);
      let checks: DoctorCheck[];
      try {
        checks = await ext.doctor(site, { http: watched.http, signal: ctl.signal });
      } catch (e) {
        checks = [{ name: `${ext.key}: probe`, status: 'fail', detail: `the probe failed: ${(e as { code?: string }).code ?? (e as Error).message}`, fix: 'run doctor again; if it repeats, report it' }];
      } finally {
        clearTimeout(timer);
      }
      for (const c of checks) report.add(c);
      const skew = clockSkewSeconds(watched.dates);
      const name = `${ext.key}: clock`;
      if (skew === undefined) {
        // No answer at all: the reachability line already says so.
        if (watched.answers() > 0) report.add({ name, status: 'warn', detail: 'no HTTP Date header in the answers: clock not compared', fix: 'check the clock with chronyc tracking or timedatectl' });
        continue;
      }
      const off = Math.abs(skew);
      const detail = `this host is ${off.toFixed(0)} s ${skew > 0 ? 'behind' : 'ahead of'} the remote (HTTP Date header)`;
      if (off > CLOCK_FAIL_S) report.add({ name, status: 'fail', detail, fix: `the gateway refuses timestamps more than ${CLOCK_FAIL_S} s off: set up time sync (chrony or systemd-timesyncd)` });
      else if (off > CLOCK_WARN_S) report.add({ name, status: 'warn', detail, fix: 'set up time sync (chrony or systemd-timesyncd) before the drift reaches 300 s' });
      else report.add({ name, status: 'ok', detail: `within ${Math.max(1, Math.ceil(off))} s of the remote (HTTP Date header; doctor fails beyond ±${CLOCK_FAIL_S} s, the provincial gateway's window)` });
    }
  } finally {
    base.close();
  }
}
