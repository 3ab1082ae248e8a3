/**
 * The environment of an engine: which plugins and site extensions exist.
 * An instance, not a global, so tests can build engines with extra plugins.
 */
import type { PluginDefinition, SiteExtension, SourceDefinition } from './sdk.js';
import { compileSchema } from './config/validate.js';

const NAME = /^[a-z][a-z0-9-]*$/;

export class Registry {
  readonly #plugins = new Map<string, PluginDefinition>();
  readonly #extensions = new Map<string, SiteExtension>();
  readonly #sources = new Map<string, SourceDefinition>();

  /** Registers a plugin; its name must be unique and its config schema must compile. */
  plugin(def: PluginDefinition<any>): this { // eslint-disable-line @typescript-eslint/no-explicit-any
    if (!NAME.test(def.name)) throw new Error(`plugin name "${def.name}" must be lower-case letters, digits and dashes`);
    if (this.#plugins.has(def.name)) throw new Error(`plugin "${def.name}" registered twice`);
    compileSchema(def.configSchema);
    this.#plugins.set(def.name, def as PluginDefinition);
    return this;
  }

  extension(ext: SiteExtension): this {
    if (this.#extensions.has(ext.key)) throw new Error(`site extension "${ext.key}" registered twice`);
    compileSchema(ext.configSchema);
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
