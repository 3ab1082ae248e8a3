/**
 * The config-schema types of the plugin SDK, in a module that imports
 * nothing, so a type check of a single file that uses them stays small and
 * fast (test/sdk/config-types.test.ts compiles its drift fixture against this
 * module alone). core/sdk.ts re-exports all three; plugins import them from
 * there.
 */

/** A JSON Schema object (draft 2020-12 subset understood by ajv). */
export type JsonSchema = Record<string, unknown>;

/** The keys of `C` that are not optional. */
export type RequiredKeys<C> = { [K in keyof C]-?: Record<string, never> extends Pick<C, K> ? never : K }[keyof C];

/**
 * A config JSON Schema tied to its TypeScript type `C`, so the two cannot
 * drift: a property the type lacks is an excess property, a key of the type
 * missing from `properties` is a missing property, and `required` may name
 * only keys the type requires (tsc checks all three over
 * test/sdk/fixtures/config-drift.ts as part of `npm test`). With the default
 * `C` any object schema passes.
 */
export type ConfigSchema<C> = JsonSchema & {
  readonly properties: { readonly [K in keyof C]-?: JsonSchema };
  readonly required?: readonly (string extends keyof C ? string : RequiredKeys<C>)[];
};
