/**
 * The environment of an engine: which plugins and site extensions exist.
 * An instance, not a global, so tests can build engines with extra plugins.
 */
import type { PluginDefinition, SiteExtension, SourceDefinition } from './sdk.js';
import { compileSchema } from './config/validate.js';
import { ErrorCatalogues, type ErrorFamily } from './errors.js';

const NAME = /^[a-z][a-z0-9-]*$/;

export class Registry {
  readonly #plugins = new Map<string, PluginDefinition>();
  readonly #extensions = new Map<string, SiteExtension>();
  readonly #sources = new Map<string, SourceDefinition>();
  readonly #errors = new ErrorCatalogues();

  /**
   * Registers a plugin family's error catalogue (`errorFactory(...)`). A code
   * that core or another family already owns throws, so the engine refuses to
   * start; registering the same family object again is a no-op.
   */
  errors(family: ErrorFamily<any>): this { // eslint-disable-line @typescript-eslint/no-explicit-any
    this.#errors.register(family);
    return this;
  }

  /** Every error code this engine knows (core and registered families): lookups, `isRetryable`, listings. */
  get errorCatalogue(): ErrorCatalogues {
    return this.#errors;
  }

  /** Registers a plugin; its name must be unique and its config schema must compile. */
  plugin(def: PluginDefinition<any>): this { // eslint-disable-line @typescript-eslint/no-explicit-any
    if (!NAME.test(def.name)) throw new Error(`plugin name "${def.name}" must be lower-case letters, digits and dashes`);
    if (this.#plugins.has(def.name)) throw new Error(`plugin "${def.name}" registered twice`);
    compileSchema(def.configSchema);
    if (def.errors) this.#errors.register(def.errors);
    this.#plugins.set(def.name, def as PluginDefinition);
    return this;
  }

  extension(ext: SiteExtension): this {
    if (this.#extensions.has(ext.key)) throw new Error(`site extension "${ext.key}" registered twice`);
    for (const c of ext.commands ?? []) {
      if (!NAME.test(c.name)) throw new Error(`command "${c.name}" of site extension "${ext.key}" must be lower-case letters, digits and dashes`);
      const owner = this.extensions.find((e) => e.commands?.some((o) => o.name === c.name));
      if (owner || ext.commands!.filter((o) => o.name === c.name).length > 1) throw new Error(`command "${c.name}" of site extension "${ext.key}" is also declared by "${owner?.key ?? ext.key}"`);
    }
    compileSchema(ext.configSchema);
    if (ext.errors) this.#errors.register(ext.errors);
    this.#extensions.set(ext.key, ext);
    return this;
  }

  /** Registers a source (a listener `type:`, or `kafka`); its type must be unique and its config schema must compile. */
  source(def: SourceDefinition<any>): this { // eslint-disable-line @typescript-eslint/no-explicit-any
    if (!NAME.test(def.type)) throw new Error(`source type "${def.type}" must be lower-case letters, digits and dashes`);
    if (this.#sources.has(def.type)) throw new Error(`source "${def.type}" registered twice`);
    compileSchema(def.configSchema);
    this.#sources.set(def.type, def as SourceDefinition);
    return this;
  }

  getSource(type: string): SourceDefinition | undefined {
    return this.#sources.get(type);
  }

  get sources(): SourceDefinition[] {
    return [...this.#sources.values()];
  }

  getPlugin(name: string): PluginDefinition | undefined {
    return this.#plugins.get(name);
  }

  get plugins(): PluginDefinition[] {
    return [...this.#plugins.values()];
  }

  get extensions(): SiteExtension[] {
    return [...this.#extensions.values()];
  }
}
