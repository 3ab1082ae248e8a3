/**
 * Throwaway database servers for the database source's tests: a PostgreSQL
 * (initdb + pg_ctl) and a MariaDB (mariadb-install-db + mariadbd), each in a
 * temp directory of its own, on a free port of 127.0.0.1, started for one
 * test file and stopped (and its directory removed) afterwards. Debian's
 * packages `postgresql` and `mariadb-server` provide them (scripts/pretest.mjs
 * installs them). PostgreSQL refuses to run as root: under root the server
 * runs as the `postgres` user the package created (runuser).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
// @ts-expect-error plain JavaScript module without types
import { postgresBin } from '../../scripts/pretest.mjs';

export interface DbServer {
  /** knex client name. */
  client: 'pg' | 'mysql2';
  /** A connection URL for knex / the listener's `connection:`. */
  url: string;
  port: number;
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (closed again before it is used: a small window, fine for tests). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

function run(cmd: string, args: string[], asUser?: string): void {
  const [c, a] = asUser && isRoot ? ['runuser', ['-u', asUser, '--', cmd, ...args]] : [cmd, args];
  const r = spawnSync(c, a, { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${cmd} failed (${r.status ?? r.signal}): ${(r.stderr || r.stdout || '').slice(-2000)}`);
}

function userIds(name: string): { uid: number; gid: number } {
  const r = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  const g = spawnSync('id', ['-g', name], { encoding: 'utf8' });
  if (r.status !== 0 || g.status !== 0) throw new Error(`no user ${name}`);
  return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
}

async function waitFor(check: () => Promise<boolean>, what: string, ms = 60_000): Promise<void> {
  const by = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > by) throw new Error(`${what} did not start within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Starts a PostgreSQL server with a `hisbridge` superuser (trust auth on 127.0.0.1) and a `his` database. */
export async function startPostgres(): Promise<DbServer> {
  const bin = postgresBin() as string | undefined;
  if (!bin) throw new Error('PostgreSQL is not installed (apt-get install postgresql; scripts/pretest.mjs does it)');
  const dir = mkdtempSync(path.join(tmpdir(), 'hisbridge-pg-'));
  chmodSync(dir, 0o700);
  if (isRoot) {
    const { uid, gid } = userIds('postgres');
    chownSync(dir, uid, gid);
  }
  const data = path.join(dir, 'data');
  const port = await freePort();
  run(path.join(bin, 'initdb'), ['-D', data, '-U', 'hisbridge', '--auth=trust', '-E', 'UTF8', '--no-sync'], 'postgres');
  run(path.join(bin, 'pg_ctl'), ['-D', data, '-l', path.join(dir, 'log'), '-w', '-t', '60', '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`, 'start'], 'postgres');
  const { default: knex } = await import('knex');
  await waitFor(async () => {
    const c = knex({ client: 'pg', connection: { host: '127.0.0.1', port, user: 'hisbridge', database: 'postgres' }, pool: { min: 0, max: 1 } });
    try {
      await c.raw('CREATE DATABASE his');
      return true;
    } catch {
      return false;
    } finally {
      await c.destroy();
    }
  }, 'PostgreSQL');
  return {
    client: 'pg',
    url: `postgres://hisbridge@127.0.0.1:${port}/his`,
    port,
    async stop() {
      try {
        run(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop'], 'postgres');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/** Starts a MariaDB server with a passwordless `hisbridge` user allowed from 127.0.0.1 and a `his` database. */
export async function startMariaDb(): Promise<DbServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'hisbridge-maria-'));
  const data = path.join(dir, 'data');
  const sock = path.join(dir, 'mysqld.sock');
  const port = await freePort();
  const user = isRoot ? ['--user=root'] : [];
  run('mariadb-install-db', ['--no-defaults', `--datadir=${data}`, '--auth-root-authentication-method=normal', '--skip-test-db', ...user]);
  const child: ChildProcess = spawn('mariadbd', [
    '--no-defaults', `--datadir=${data}`, `--socket=${sock}`, `--port=${port}`, '--bind-address=127.0.0.1',
    `--pid-file=${path.join(dir, 'mariadbd.pid')}`, '--skip-log-bin', '--innodb-flush-log-at-trx-commit=0', '--skip-name-resolve', ...user,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const mysql = await import('mysql2/promise');
  try {
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`mariadbd exited: ${stderr}`);
      try {
        const c = await mysql.createConnection({ socketPath: sock, user: 'root' });
        await c.query("CREATE USER IF NOT EXISTS 'hisbridge'@'127.0.0.1'");
        await c.query("GRANT ALL ON *.* TO 'hisbridge'@'127.0.0.1'");
        await c.query('CREATE DATABASE IF NOT EXISTS his CHARACTER SET utf8mb4');
        await c.end();
        return true;
      } catch (e) {
        if ((e as Error).message.startsWith('mariadbd exited')) throw e;
        return false;
      }
    }, 'MariaDB');
  } catch (e) {
    child.kill('SIGKILL');
    await exited;
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    client: 'mysql2',
    url: `mysql://hisbridge@127.0.0.1:${port}/his`,
    port,
    async stop() {
      child.kill('SIGKILL');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One server for the describe block: started before its tests, stopped after them. */
export function useDbServer(start: () => Promise<DbServer>): { readonly server: DbServer } {
  let server: DbServer | undefined;
  beforeAll(async () => {
    server = await start();
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
  }, 60_000);
  return {
    get server() {
      if (!server) throw new Error('useDbServer: the server is not running here');
      return server;
    },
  };
}
