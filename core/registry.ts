/**
 * The environment of an engine: which plugins and site extensions exist.
 * An instance, not a global, so tests can build engines with extra plugins.
 */
import type { PluginDefinition, SiteExtension } from './sdk.js';
import { compileSchema } from './config/validate.js';

const NAME = /^[a-z][a-z0-9-]*$/;

export class Registry {
  readonly #plugins = new Map<string, PluginDefinition>();
  readonly #extensions = new Map<string, SiteExtension>();

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
