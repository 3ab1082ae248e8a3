/**
 * The store holds raw HL7 with ID numbers (issue 11, item 9): the data
 * directory is created 0700 and hisbridge.db, -wal and -shm 0600; existing
 * ones readable by others are tightened when the engine starts, with a warning.
 */
import { chmodSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Store, DB_FILE } from '../../core/store/sqlite.js';
import { Engine } from '../../core/engine/engine.js';
import { loadSiteConfig } from '../../core/config/site.js';
import { builtinRegistry } from '../../plugins/index.js';
import { createLogger } from '../../core/log.js';
import { freshDirs } from '../helpers/store.js';

const mode = (p: string) => statSync(p).mode & 0o777;
const temp = freshDirs('hisbridge-perm-');

describe('store file permissions', () => {
  it('creates the data directory 0700 and the database, WAL and SHM files 0600, whatever the umask', () => {
    const old = process.umask(0o022);
    try {
      const dir = path.join(temp(), 'data', 'store');
      const store = Store.open(dir);
      try {
        expect(mode(dir)).toBe(0o700);
        for (const f of [DB_FILE, `${DB_FILE}-wal`, `${DB_FILE}-shm`]) expect(mode(path.join(dir, f))).toBe(0o600);
        expect(store.tightened).toEqual([]);
      } finally {
        store.close();
      }
    } finally {
      process.umask(old);
    }
  });

  it('tightens an existing 0755 directory and 0644 files when the engine starts, with one warning each', async () => {
    const root = temp();
    const dir = path.join(root, 'store');
    mkdirSync(dir);
    Store.open(dir).close();
    chmodSync(dir, 0o755);
    chmodSync(path.join(dir, DB_FILE), 0o644);
    const lines: string[] = [];
    const log = createLogger({
      level: 'info',
      destination: new Writable({
        write(c: Buffer, _e, cb) {
          lines.push(...c.toString().split('\n').filter(Boolean));
          cb();
        },
      }),
    });
    const reg = builtinRegistry();
    const config = loadSiteConfig(undefined, reg.extensions, { mllpPort: 0, httpPort: 0, dataDir: dir, routesDir: root, simulators: false });
    const engine = await Engine.create({ config, registry: reg, log, workers: false });
    try {
      expect(mode(dir)).toBe(0o700);
      for (const f of [DB_FILE, `${DB_FILE}-wal`, `${DB_FILE}-shm`]) expect(mode(path.join(dir, f))).toBe(0o600);
      const warns = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e.code === 'STORE_W_PERMISSIONS');
      expect(warns.map((w) => w.path).sort()).toEqual([dir, path.join(dir, DB_FILE)].sort());
      expect(warns.every((w) => w.level === 'warn')).toBe(true);
    } finally {
      await engine.stop(100);
    }
  });
});
