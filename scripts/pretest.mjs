#!/usr/bin/env node
/**
 * `npm test`'s pretest step: the Debian packages the test suite needs.
 *
 *   kcat            the Kafka tests produce and read records with it
 *   chromium        the browser test drives /usr/bin/chromium
 *   python3-hl7     mllp_send, a second MLLP client the tests talk to
 *   fonts-noto-cjk  so console screenshots show Chinese, not boxes
 *   openssl         the TLS tests make their certificates with it at test time
 *   prometheus      promtool: the deploy test checks and unit-tests deploy/prometheus's alert rules
 *   postgresql      the database source's tests start a throwaway PostgreSQL (initdb, pg_ctl)
 *   mariadb-server  ... and a throwaway MariaDB (mariadb-install-db, mariadbd)
 *
 * Everything present: a few file checks, no process started, nothing printed.
 * Something missing and running as root (a fresh CI machine or container):
 * installs it with apt-get. Otherwise stops with the exact command to run.
 */
import { accessSync, constants, existsSync, readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/** Each package and how to tell it is installed (file checks only: fast). */
export const NEEDS = [
  { pkg: 'kcat', present: () => onPath('kcat') },
  { pkg: 'chromium', present: () => executable('/usr/bin/chromium') },
  { pkg: 'python3-hl7', present: () => onPath('mllp_send') },
  { pkg: 'fonts-noto-cjk', present: () => existsSync('/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc') },
  { pkg: 'openssl', present: () => onPath('openssl') },
  { pkg: 'prometheus', present: () => onPath('promtool') },
  { pkg: 'postgresql', present: () => postgresBin() !== undefined },
  { pkg: 'mariadb-server', present: () => executable('/usr/sbin/mariadbd') && executable('/usr/bin/mariadb-install-db') },
];

/** The directory of Debian's newest PostgreSQL server binaries (/usr/lib/postgresql/<major>/bin), if installed. */
export function postgresBin() {
  const root = '/usr/lib/postgresql';
  let majors;
  try {
    majors = readdirSync(root).filter((d) => /^\d+$/.test(d)).sort((a, b) => Number(b) - Number(a));
  } catch {
    return undefined;
  }
  for (const m of majors) {
    const bin = path.join(root, m, 'bin');
    if (executable(path.join(bin, 'initdb')) && executable(path.join(bin, 'pg_ctl'))) return bin;
  }
  return undefined;
}

function executable(file) {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(cmd) {
  return (process.env.PATH ?? '').split(path.delimiter).some((dir) => dir && executable(path.join(dir, cmd)));
}

export function missing() {
  return NEEDS.filter((n) => !n.present()).map((n) => n.pkg);
}

export function installCommand(pkgs, sudo) {
  const s = sudo ? 'sudo ' : '';
  return `${s}apt-get update && ${s}env DEBIAN_FRONTEND=noninteractive apt-get install -y ${pkgs.join(' ')}`;
}

function main() {
  const need = missing();
  if (need.length === 0) return 0;
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  const hasApt = onPath('apt-get');
  if (!root || !hasApt) {
    process.stderr.write(
      `pretest: the test suite needs these Debian packages, which are missing: ${need.join(', ')}\n` +
        (hasApt ? `Install them, then run npm test again:\n\n  ${installCommand(need, true)}\n\n` : 'This machine has no apt-get: install the equivalent packages with its package manager.\n'),
    );
    return 1;
  }
  process.stderr.write(`pretest: installing the Debian packages the tests need: ${need.join(', ')}\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [['update'], ['install', '-y', ...need]]) {
    const r = spawnSync('apt-get', args, { stdio: 'inherit', env });
    if (r.status !== 0) {
      process.stderr.write(`pretest: apt-get ${args[0]} failed (exit ${r.status ?? r.signal}); run it by hand:\n\n  ${installCommand(need, false)}\n\n`);
      return 1;
    }
  }
  const still = missing();
  if (still.length) {
    process.stderr.write(`pretest: still missing after apt-get install: ${still.join(', ')}\n`);
    return 1;
  }
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) process.exitCode = main();
