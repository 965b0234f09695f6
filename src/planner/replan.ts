// Re-planning on membership change, with hysteresis: moving layers costs minutes of weight loading and
// drops every KV cache on the moved stages, so a new plan replaces a running one only when the running
// one is no longer valid or the new one is better by at least `threshold` (a fraction of its cost).
//
// Typical use after a peer joins or leaves:
//   let current: Plan | null; try { current = evaluatePlacement(model, cluster, running, opts) } catch { current = null }
//   const candidate = plan(model, cluster, opts);
//   if (shouldReplan(current, candidate, 0.1)) apply(candidate.placement);
import type { Placement } from "./cost-model.ts";
import type { Plan } from "./placement.ts";

/** The part of a plan the decision reads (Plan fits). */
export interface PlanScore {
  objective: Plan["objective"];
  /** Lower is better (see objectiveCost). */
  cost: number;
  placement: Placement;
}

export const DEFAULT_REPLAN_THRESHOLD = 0.1;

/** Relative improvement of candidate over current: 0.2 means 20% lower cost. Infinity when there is no current plan. */
export function replanGain(current: PlanScore | null | undefined, candidate: PlanScore): number {
  if (!current || !Number.isFinite(current.cost)) return Infinity;
  if (current.objective !== candidate.objective) return Infinity;
  return (current.cost - candidate.cost) / current.cost;
}

export function samePlacement(a: Placement, b: Placement): boolean {
  return a.length === b.length && a.every((s, i) => s.peer === b[i].peer && s.start === b[i].start && s.end === b[i].end);
}

/**
 * True when the running plan should be replaced: there is none (or it became invalid: pass null), the
 * objective changed, or the candidate is better by at least `threshold` and actually differs.
 */
export function shouldReplan(current: PlanScore | null | undefined, candidate: PlanScore, threshold = DEFAULT_REPLAN_THRESHOLD): boolean {
  if (current && samePlacement(current.placement, candidate.placement)) return false;
  return replanGain(current, candidate) >= threshold;
}
