// The topology model: types and seed (model.ts), document parsing (parse.ts), file loading (load.ts).
export * from "./load.js";
export * from "./model.js";
export * from "./parse.js";
