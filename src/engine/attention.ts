// Causal grouped-query attention of one sequence chunk against its KV cache (fast path).
//
// With the WASM kernels (the default) the fast path runs assembly/kernels.ts `attend` instead, on
// a KV cache that lives in kernel memory: the same arithmetic, bit for bit (test/kernels/attention.test.ts).
// This TypeScript version serves the "typescript" kernels option and head dims not a multiple of 4.
//
// Numerics of llama.cpp's CPU flash-attention kernel (ggml-cpu/ops.cpp
// ggml_compute_forward_flash_attn_ext_f16_one_chunk), which llama.cpp uses by default on CPU
// ("auto" flash attention), with the cache type's precision:
//   q is converted to the cache type (fp16 for an F16 cache)
//   for each position j in order (online softmax):
//     s = f32(q·k_j) * scale   (q·k_j summed in f64, lanes i%4 separately, then (l0+l2)+(l1+l3),
//                             the order of the WASM kernel assembly/kernels.ts attend)
//     if s > M: ms = expf(M - s), M = s, acc *= ms     (acc rounded to the cache type)
//     else:     vs = expf(s - M)
//     acc = round(acc + v_j * vs)                        (fp16 accumulator for an F16 cache)
//     S = S * ms + vs
//   out = f32(acc) * (1/S)
// expf is expNeg below (musl's f64 exp, as the kernels' NativeMath.exp) rounded to f32.
// reference-forward.ts does the same, one token at a time (summing q·k_j in order: within 1e-5;
// its fround(Math.exp(x)) equals fround(expNeg(x)) for every f32 x <= 0).
import { f16round } from "./float16.ts";
import type { KVCache } from "./kv-cache.ts";
import type { ModelConfig } from "./model-config.ts";
import type { Scratch } from "./ops.ts";

const fround = Math.fround;

/**
 * musl's exp table (__exp_data.tab, which AssemblyScript's NativeMath.exp and assembly/kernels.ts
 * EXP_TAB hold): for i < 128, [2i] the tail and [2i + 1] the bits of 2^(i/128) less i << 45.
 */
const EXP_DATA = BigUint64Array.of(
  0x0000000000000000n, 0x3FF0000000000000n, 0x3C9B3B4F1A88BF6En, 0x3FEFF63DA9FB3335n,
  0xBC7160139CD8DC5Dn, 0x3FEFEC9A3E778061n, 0xBC905E7A108766D1n, 0x3FEFE315E86E7F85n,
  0x3C8CD2523567F613n, 0x3FEFD9B0D3158574n, 0xBC8BCE8023F98EFAn, 0x3FEFD06B29DDF6DEn,
  0x3C60F74E61E6C861n, 0x3FEFC74518759BC8n, 0x3C90A3E45B33D399n, 0x3FEFBE3ECAC6F383n,
  0x3C979AA65D837B6Dn, 0x3FEFB5586CF9890Fn, 0x3C8EB51A92FDEFFCn, 0x3FEFAC922B7247F7n,
  0x3C3EBE3D702F9CD1n, 0x3FEFA3EC32D3D1A2n, 0xBC6A033489906E0Bn, 0x3FEF9B66AFFED31Bn,
  0xBC9556522A2FBD0En, 0x3FEF9301D0125B51n, 0xBC5080EF8C4EEA55n, 0x3FEF8ABDC06C31CCn,
  0xBC91C923B9D5F416n, 0x3FEF829AAEA92DE0n, 0x3C80D3E3E95C55AFn, 0x3FEF7A98C8A58E51n,
  0xBC801B15EAA59348n, 0x3FEF72B83C7D517Bn, 0xBC8F1FF055DE323Dn, 0x3FEF6AF9388C8DEAn,
  0x3C8B898C3F1353BFn, 0x3FEF635BEB6FCB75n, 0xBC96D99C7611EB26n, 0x3FEF5BE084045CD4n,
  0x3C9AECF73E3A2F60n, 0x3FEF54873168B9AAn, 0xBC8FE782CB86389Dn, 0x3FEF4D5022FCD91Dn,
  0x3C8A6F4144A6C38Dn, 0x3FEF463B88628CD6n, 0x3C807A05B0E4047Dn, 0x3FEF3F49917DDC96n,
  0x3C968EFDE3A8A894n, 0x3FEF387A6E756238n, 0x3C875E18F274487Dn, 0x3FEF31CE4FB2A63Fn,
  0x3C80472B981FE7F2n, 0x3FEF2B4565E27CDDn, 0xBC96B87B3F71085En, 0x3FEF24DFE1F56381n,
  0x3C82F7E16D09AB31n, 0x3FEF1E9DF51FDEE1n, 0xBC3D219B1A6FBFFAn, 0x3FEF187FD0DAD990n,
  0x3C8B3782720C0AB4n, 0x3FEF1285A6E4030Bn, 0x3C6E149289CECB8Fn, 0x3FEF0CAFA93E2F56n,
  0x3C834D754DB0ABB6n, 0x3FEF06FE0A31B715n, 0x3C864201E2AC744Cn, 0x3FEF0170FC4CD831n,
  0x3C8FDD395DD3F84An, 0x3FEEFC08B26416FFn, 0xBC86A3803B8E5B04n, 0x3FEEF6C55F929FF1n,
  0xBC924AEDCC4B5068n, 0x3FEEF1A7373AA9CBn, 0xBC9907F81B512D8En, 0x3FEEECAE6D05D866n,
  0xBC71D1E83E9436D2n, 0x3FEEE7DB34E59FF7n, 0xBC991919B3CE1B15n, 0x3FEEE32DC313A8E5n,
  0x3C859F48A72A4C6Dn, 0x3FEEDEA64C123422n, 0xBC9312607A28698An, 0x3FEEDA4504AC801Cn,
  0xBC58A78F4817895Bn, 0x3FEED60A21F72E2An, 0xBC7C2C9B67499A1Bn, 0x3FEED1F5D950A897n,
  0x3C4363ED60C2AC11n, 0x3FEECE086061892Dn, 0x3C9666093B0664EFn, 0x3FEECA41ED1D0057n,
  0x3C6ECCE1DAA10379n, 0x3FEEC6A2B5C13CD0n, 0x3C93FF8E3F0F1230n, 0x3FEEC32AF0D7D3DEn,
  0x3C7690CEBB7AAFB0n, 0x3FEEBFDAD5362A27n, 0x3C931DBDEB54E077n, 0x3FEEBCB299FDDD0Dn,
  0xBC8F94340071A38En, 0x3FEEB9B2769D2CA7n, 0xBC87DECCDC93A349n, 0x3FEEB6DAA2CF6642n,
  0xBC78DEC6BD0F385Fn, 0x3FEEB42B569D4F82n, 0xBC861246EC7B5CF6n, 0x3FEEB1A4CA5D920Fn,
  0x3C93350518FDD78En, 0x3FEEAF4736B527DAn, 0x3C7B98B72F8A9B05n, 0x3FEEAD12D497C7FDn,
  0x3C9063E1E21C5409n, 0x3FEEAB07DD485429n, 0x3C34C7855019C6EAn, 0x3FEEA9268A5946B7n,
  0x3C9432E62B64C035n, 0x3FEEA76F15AD2148n, 0xBC8CE44A6199769Fn, 0x3FEEA5E1B976DC09n,
  0xBC8C33C53BEF4DA8n, 0x3FEEA47EB03A5585n, 0xBC845378892BE9AEn, 0x3FEEA34634CCC320n,
  0xBC93CEDD78565858n, 0x3FEEA23882552225n, 0x3C5710AA807E1964n, 0x3FEEA155D44CA973n,
  0xBC93B3EFBF5E2228n, 0x3FEEA09E667F3BCDn, 0xBC6A12AD8734B982n, 0x3FEEA012750BDABFn,
  0xBC6367EFB86DA9EEn, 0x3FEE9FB23C651A2Fn, 0xBC80DC3D54E08851n, 0x3FEE9F7DF9519484n,
  0xBC781F647E5A3ECFn, 0x3FEE9F75E8EC5F74n, 0xBC86EE4AC08B7DB0n, 0x3FEE9F9A48A58174n,
  0xBC8619321E55E68An, 0x3FEE9FEB564267C9n, 0x3C909CCB5E09D4D3n, 0x3FEEA0694FDE5D3Fn,
  0xBC7B32DCB94DA51Dn, 0x3FEEA11473EB0187n, 0x3C94ECFD5467C06Bn, 0x3FEEA1ED0130C132n,
  0x3C65EBE1ABD66C55n, 0x3FEEA2F336CF4E62n, 0xBC88A1C52FB3CF42n, 0x3FEEA427543E1A12n,
  0xBC9369B6F13B3734n, 0x3FEEA589994CCE13n, 0xBC805E843A19FF1En, 0x3FEEA71A4623C7ADn,
  0xBC94D450D872576En, 0x3FEEA8D99B4492EDn, 0x3C90AD675B0E8A00n, 0x3FEEAAC7D98A6699n,
  0x3C8DB72FC1F0EAB4n, 0x3FEEACE5422AA0DBn, 0xBC65B6609CC5E7FFn, 0x3FEEAF3216B5448Cn,
  0x3C7BF68359F35F44n, 0x3FEEB1AE99157736n, 0xBC93091FA71E3D83n, 0x3FEEB45B0B91FFC6n,
  0xBC5DA9B88B6C1E29n, 0x3FEEB737B0CDC5E5n, 0xBC6C23F97C90B959n, 0x3FEEBA44CBC8520Fn,
  0xBC92434322F4F9AAn, 0x3FEEBD829FDE4E50n, 0xBC85CA6CD7668E4Bn, 0x3FEEC0F170CA07BAn,
  0x3C71AFFC2B91CE27n, 0x3FEEC49182A3F090n, 0x3C6DD235E10A73BBn, 0x3FEEC86319E32323n,
  0xBC87C50422622263n, 0x3FEECC667B5DE565n, 0x3C8B1C86E3E231D5n, 0x3FEED09BEC4A2D33n,
  0xBC91BBD1D3BCBB15n, 0x3FEED503B23E255Dn, 0x3C90CC319CEE31D2n, 0x3FEED99E1330B358n,
  0x3C8469846E735AB3n, 0x3FEEDE6B5579FDBFn, 0xBC82DFCD978E9DB4n, 0x3FEEE36BBFD3F37An,
  0x3C8C1A7792CB3387n, 0x3FEEE89F995AD3ADn, 0xBC907B8F4AD1D9FAn, 0x3FEEEE07298DB666n,
  0xBC55C3D956DCAEBAn, 0x3FEEF3A2B84F15FBn, 0xBC90A40E3DA6F640n, 0x3FEEF9728DE5593An,
  0xBC68D6F438AD9334n, 0x3FEEFF76F2FB5E47n, 0xBC91EEE26B588A35n, 0x3FEF05B030A1064An,
  0x3C74FFD70A5FDDCDn, 0x3FEF0C1E904BC1D2n, 0xBC91BDFBFA9298ACn, 0x3FEF12C25BD71E09n,
  0x3C736EAE30AF0CB3n, 0x3FEF199BDD85529Cn, 0x3C8EE3325C9FFD94n, 0x3FEF20AB5FFFD07An,
  0x3C84E08FD10959ACn, 0x3FEF27F12E57D14Bn, 0x3C63CDAF384E1A67n, 0x3FEF2F6D9406E7B5n,
  0x3C676B2C6C921968n, 0x3FEF3720DCEF9069n, 0xBC808A1883CCB5D2n, 0x3FEF3F0B555DC3FAn,
  0xBC8FAD5D3FFFFA6Fn, 0x3FEF472D4A07897Cn, 0xBC900DAE3875A949n, 0x3FEF4F87080D89F2n,
  0x3C74A385A63D07A7n, 0x3FEF5818DCFBA487n, 0xBC82919E2040220Fn, 0x3FEF60E316C98398n,
  0x3C8E5A50D5C192ACn, 0x3FEF69E603DB3285n, 0x3C843A59AC016B4Bn, 0x3FEF7321F301B460n,
  0xBC82D52107B43E1Fn, 0x3FEF7C97337B9B5Fn, 0xBC892AB93B470DC9n, 0x3FEF864614F5A129n,
  0x3C74B604603A88D3n, 0x3FEF902EE78B3FF6n, 0x3C83C5EC519D7271n, 0x3FEF9A51FBC74C83n,
  0xBC8FF7128FD391F0n, 0x3FEFA4AFA2A490DAn, 0xBC8DAE98E223747Dn, 0x3FEFAF482D8E67F1n,
  0x3C8EC3BC41AA2008n, 0x3FEFBA1BEE615A27n, 0x3C842B94C3A9EB32n, 0x3FEFC52B376BBA97n,
  0x3C8A64A931D185EEn, 0x3FEFD0765B6E4540n, 0xBC8E37BAE43BE3EDn, 0x3FEFDBFDAD9CBE14n,
  0x3C77893B4D91CD9Dn, 0x3FEFE7C1819E90D8n, 0x3C5305C14160CC89n, 0x3FEFF3C22B8F71F1n,
);
const EXP_TAIL = new Float64Array(128);
const EXP_SCALE = new Float64Array(128); // 2^(i/128) (its f64 in the table)
const POW2_NEG = new Float64Array(301); // 2^-e
{
  const u = new BigUint64Array(2);
  const f = new Float64Array(u.buffer);
  for (let i = 0; i < 128; i++) {
    u[0] = EXP_DATA[2 * i];
    u[1] = EXP_DATA[2 * i + 1] + (BigInt(i) << 45n);
    EXP_TAIL[i] = f[0];
    EXP_SCALE[i] = f[1];
  }
  POW2_NEG[0] = 1;
  for (let e = 1; e < POW2_NEG.length; e++) POW2_NEG[e] = POW2_NEG[e - 1] / 2;
}
function f64bits(b: bigint): number {
  return new Float64Array(BigUint64Array.of(b).buffer)[0];
}
const INV_LN2N = f64bits(0x40671547652B82FEn); // 128/ln2
const SHIFT = f64bits(0x4338000000000000n); // 1.5·2^52
const NEG_LN2HI_N = f64bits(0xBF762E42FEFA0000n);
const NEG_LN2LO_N = f64bits(0xBD0CF79ABC9E3B3An);
const C2 = f64bits(0x3FDFFFFFFFFFFDBDn);
const C3 = f64bits(0x3FC555555555543Cn);
const C4 = f64bits(0x3FA55555CF172B91n);
const C5 = f64bits(0x3F81111167A4D017n);

/**
 * exp(x) for x <= 0 (or NaN): musl's exp (exp_lut, error < 0.51 ulp) by the same f64 operations as
 * AssemblyScript's NativeMath.exp and the kernels' expNeg2, so the same bits; below -200 it gives
 * exp(-200), which rounds to 0 in f32 like exp(x). Rounded to f32 it also equals
 * fround(Math.exp(x)) (V8's fdlibm exp) for every f32 x <= 0 (checked exhaustively down to -104,
 * below which both are 0).
 */
export function expNeg(x: number): number {
  if (x < -200) x = -200;
  const kd = (x * INV_LN2N + SHIFT) - SHIFT; // k = round(x·128/ln2), exactly
  const r = x + kd * NEG_LN2HI_N + kd * NEG_LN2LO_N;
  const k = kd | 0;
  const i = k & 127;
  const scale = EXP_SCALE[i] * POW2_NEG[(i - k) >> 7]; // 2^(k/128), exactly the kernels' scale
  const r2 = r * r;
  const tmp = EXP_TAIL[i] + r + r2 * (C2 + r * C3) + r2 * r2 * (C4 + r * C5);
  return scale + scale * tmp;
}

/**
 * For the chunk's tokens at rows [row0, row0 + nTok) of q (.., n_head*head_dim), at positions
 * pos0 + t, attends over cache positions [0, pos0 + t] of local layer l and writes rows of
 * out (.., n_head*head_dim_v). The chunk's own keys/values must already be in the cache.
 */
export function attendChunk(
  c: ModelConfig, q: Float32Array, out: Float32Array, row0: number, nTok: number, pos0: number,
  kv: KVCache, l: number, scratch: Scratch,
): void {
  const hd = c.headDim;
  const hdv = c.headDimV;
  const qDim = c.nHead * hd;
  const oDim = c.nHead * hdv;
  const kDim = kv.kDim;
  const vDim = kv.vDim;
  const K = kv.k[l]; // (capacity, n_head_kv*head_dim)
  const V = kv.v[l]; // (capacity, n_head_kv*head_dim_v)
  const f16 = kv.type === "f16";
  const scale = fround(1 / Math.sqrt(hd));
  const group = c.nHead / c.nHeadKv;
  const qh = scratch.f32("att.q", hd); // (head_dim) one query head, in the cache's precision
  const acc = scratch.f32("att.acc", hdv); // (head_dim_v) weighted sum of values, in the cache's precision
  const accBits = new Uint32Array(acc.buffer, acc.byteOffset, hdv); // the same floats as bits (inline fp16 rounding)

  for (let t = 0; t < nTok; t++) {
    const nKv = pos0 + t + 1; // causal: positions 0 .. pos0 + t
    const qo = (row0 + t) * qDim;
    const oo = (row0 + t) * oDim;
    for (let h = 0; h < c.nHead; h++) {
      const kvh = Math.floor(h / group);
      if (f16) for (let i = 0; i < hd; i++) qh[i] = f16round(q[qo + h * hd + i]);
      else for (let i = 0; i < hd; i++) qh[i] = q[qo + h * hd + i];
      acc.fill(0, 0, hdv);
      let M = -Infinity;
      let S = 0;
      for (let j = 0; j < nKv; j++) {
        const kb = j * kDim + kvh * hd;
        let d0 = 0;
        let d1 = 0;
        let d2 = 0;
        let d3 = 0;
        let i = 0;
        for (; i + 4 <= hd; i += 4) {
          d0 += qh[i] * K[kb + i];
          d1 += qh[i + 1] * K[kb + i + 1];
          d2 += qh[i + 2] * K[kb + i + 2];
          d3 += qh[i + 3] * K[kb + i + 3];
        }
        if (i < hd) d0 += qh[i] * K[kb + i];
        if (i + 1 < hd) d1 += qh[i + 1] * K[kb + i + 1];
        if (i + 2 < hd) d2 += qh[i + 2] * K[kb + i + 2];
        const s = fround(fround((d0 + d2) + (d1 + d3)) * scale);
        let ms = 1;
        let vs = 1;
        if (s > M) {
          ms = fround(expNeg(fround(M - s)));
          M = s;
          if (f16) for (let d = 0; d < hdv; d++) acc[d] = f16round(acc[d] * ms);
          else for (let d = 0; d < hdv; d++) acc[d] *= ms;
        } else {
          vs = fround(expNeg(fround(s - M)));
        }
        const vb = j * vDim + kvh * hdv;
        if (f16) {
          for (let d = 0; d < hdv; d++) {
            // acc[d] = f16round(acc[d] + v * vs), with f16round inlined for the normal fp16 range
            acc[d] += V[vb + d] * vs;
            const u = accBits[d];
            if (((u & 0x7fffffff) - 0x38800000) >>> 0 < 0x477ff000 - 0x38800000) accBits[d] = (u + 0xfff + ((u >>> 13) & 1)) & 0xffffe000;
            else acc[d] = f16round(acc[d]);
          }
        } else {
          for (let d = 0; d < hdv; d++) acc[d] += V[vb + d] * vs;
        }
        S = fround(S * ms + vs);
      }
      const inv = S === 0 ? 0 : fround(1 / S);
      for (let d = 0; d < hdv; d++) out[oo + h * hdv + d] = acc[d] * inv;
    }
  }
}
