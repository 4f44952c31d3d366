export * from "./builder.ts";
export * from "./registry.ts";
export * from "./signatures/index.ts";
export * from "./variables/index.ts";
