// Public API of the planner: a pure cost model and placement over measured or datasheet figures.
export * from "./units.ts";
export * from "./model-profile.ts";
export * from "./cluster.ts";
export * from "./cost-model.ts";
export * from "./placement.ts";
export * from "./replan.ts";
export * from "./network-figures.ts";
export * from "./scenario.ts";
