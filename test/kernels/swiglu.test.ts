// SwiGLU in WASM (src/engine/ops.ts swiglu → assembly/kernels.ts swiglu) against the TypeScript
// formula, bit for bit: the kernel's exp (fdexp, fdlibm's __ieee754_exp) must give Math.exp's bits.
import { test } from "node:test";
import assert from "node:assert/strict";
import { KernelMemory } from "../../src/kernels/index.ts";
import { swiglu, swigluTS } from "../../src/engine/ops.ts";
import { mulberry32 as rng } from "../helpers/random.ts";

test("fdexp == Math.exp (random doubles, every range, specials)", () => {
  const e = new KernelMemory().exports;
  const r = rng(7);
  const bits = new Float64Array(1);
  const w = new Uint32Array(bits.buffer);
  const specials = [0, -0, 1, -1, 0.5, -0.5, 2, 709.78, 709.79, -745.1, -745.2, 1e-300, -1e-30, 2 ** -28, Infinity, -Infinity, NaN];
  for (const x of specials) assert.ok(Object.is(e.fd_exp(x), Math.exp(x)), `exp(${x}): ${e.fd_exp(x)} != ${Math.exp(x)}`);
  for (let i = 0; i < 400_000; i++) {
    let x: number;
    if (i % 3 === 0) x = (r() - 0.5) * 40;
    else if (i % 3 === 1) x = (r() - 0.5) * 1500;
    else {
      w[0] = (r() * 2 ** 32) >>> 0;
      w[1] = (r() * 2 ** 32) >>> 0;
      x = bits[0];
    }
    const a = e.fd_exp(x);
    const b = Math.exp(x);
    if (!Object.is(a, b)) assert.fail(`exp(${x}): ${a} != ${b}`);
  }
});

test("swiglu (WASM) == swigluTS, bit for bit", () => {
  const r = rng(11);
  for (const n of [1, 7, 1536, 100_000]) {
    const g = new Float32Array(n).map(() => (r() - 0.5) * (r() < 0.01 ? 400 : 20));
    const u = new Float32Array(n).map(() => (r() - 0.5) * 8);
    if (n > 10) g.set([0, -0, 88, -88, 104, -104, Infinity, -Infinity, NaN, 1e-40]);
    const a = g.slice();
    const b = g.slice();
    swiglu(a, u, n);
    swigluTS(b, u, n);
    assert.deepEqual(a, b, `n = ${n}`);
  }
});
