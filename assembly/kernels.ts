// Hot kernels of the engine, in AssemblyScript, compiled to WebAssembly with SIMD (build: npm run build).
//
// Every kernel works on raw addresses in one (shared) linear memory that the TypeScript side
// manages (src/kernels/). No allocation, no runtime: a kernel reads its inputs and writes its
// outputs, so any number of threads may run kernels on disjoint output ranges at once.
//
// Each SIMD kernel `name` has a scalar twin `name_generic` with exactly the same arithmetic (the
// same integer block sums, the same f64 operations in the same order): test/kernels/ checks the
// pairs against each other and against a float64 reference, like ggml's test-backend-ops.
//
// Matmul numerics are ggml-cpu's: the activation row is quantized once (Q8_0 / Q8_1 / Q8_K, the
// weight type's vec_dot_type, values exactly as src/engine/matmul-input.ts rounds them), each
// weight block is dotted with it in integers, and the integer sum is scaled by d_w·d_x. Block
// results are accumulated in f64 (the products d_w·d_x·isum are exact in f64), so the result is
// the float64 value of ggml's integer formula, rounded to f32 once. (ggml accumulates in f32; that
// is faster, but its extra rounding flips quantized activations of later layers against the
// engine's reference path far more often — test/engine/reference-vs-fast.test.ts.) Matmuls are
// tiled over tokens (each weight block is loaded and widened once for up to 4 tokens) without
// changing any output's sequence of operations: results never depend on how many tokens share a call.
//
// V8 (TurboFan) habits the code works around, found in its generated x64 (--print-wasm-code):
// a SIMD constant is rematerialized at every use (2-3 instructions), so hot loops derive theirs
// from a runtime value; a fully unrolled token tile is scheduled token after token, spilling the
// weights every token shares, so tiles loop over the chunks of a block; an address add is not
// folded into a load, so the one-token paths are unrolled with immediate offsets.
//
// Uniform matmul signature (so that worker threads can dispatch any of them by index):
//   mm_X(w, nCols, r0, r1, xq, xd, xs, nTok, y, ys)
//     w      weights (layout per kernel, see src/kernels/layout.ts)
//     nCols  elements per weight row
//     r0,r1  the output rows to compute (multiples of 4 for the 4-row interleaved layouts)
//     xq     activations: Q8_0 quants as i16 (quantize_q8, for Q8_0 weights) or int8 (quantize_q8i,
//            for Q4_0/Q5_0/Q4_1/Q5_1), Q8_K quants as int8 (quantize_q8k), all (nTok, nCols); or f32
//            values (nTok, nCols) for float weights
//     xd     f32 block scales of the activations (nTok, nCols/32 or nCols/256)
//     xs     quantize_q8: per token |q| then the sign masks (nTok × 2·nCols bytes); quantize_q8i:
//            [f32 Q8_1 block sum, i32 Σq] (nTok × nCols/32 pairs); quantize_q8k: i16 sums of 16
//            quants (nTok × nCols/16)
//   Kernels with a `_x` variant use i16x8.relaxed_dot_i8x16_i7x16_s (see dotU8); `_x` computes the
//   same integers without it, for machines where relaxed_dot_probe() fails.
//     y, ys  f32 output, element (t, r) at y + 4·(t·ys + r)
//
// One file per kernel family; the module's exports are the re-exports below. Helpers shared
// between families live in common.ts and exp.ts, which are imported, never re-exported.

export * from "./quantize";
export * from "./q8r";
export * from "./q45";
export * from "./q4k";
export * from "./q5k";
export * from "./q6k";
export * from "./float";
export * from "./attention";
export * from "./swiglu";
export * from "./probes";
