// The mesh's Prometheus metrics, on the gateway's registry: membership events by type (join, leave,
// death, quarantine, replan, replay, unavailable), how long the mesh was without a ring at
// each recovery, and the current epoch, stage and spare counts.
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { MeshEvent } from "./mesh-status.ts";

export interface MeshGauges {
  epoch: number;
  stages: number;
  spares: number;
}

export class MeshMetrics {
  private readonly events: Counter<"event">;
  private readonly recovery: Histogram;
  private source: () => MeshGauges | undefined = () => undefined;

  constructor(registry: Registry, prefix = "llmesh_") {
    const registers = [registry];
    this.events = new Counter({ name: `${prefix}mesh_events_total`, help: "Mesh membership events: join, leave, death, quarantine, replan, replay, unavailable.", labelNames: ["event"], registers });
    this.recovery = new Histogram({
      name: `${prefix}mesh_recovery_seconds`, help: "Time the mesh was without a working ring (a stage died or a placement switched) until the new ring took the next step.",
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120], registers,
    });
    const gauge = (k: keyof MeshGauges, help: string) => {
      const source = () => this.source();
      new Gauge({ name: `${prefix}mesh_${k}`, help, registers, collect(this: Gauge) { this.set(source()?.[k] ?? 0); } });
    };
    gauge("epoch", "Placement generation (1 = the first placement; +1 per re-plan).");
    gauge("stages", "Stages in the current ring (host included).");
    gauge("spares", "Joined peers holding no layers.");
  }

  setSource(f: () => MeshGauges | undefined): void {
    this.source = f;
  }

  onEvent(e: MeshEvent): void {
    this.events.inc({ event: e.type });
    if (e.type === "replan" && e.ms !== undefined) this.recovery.observe(e.ms / 1000);
  }
}
