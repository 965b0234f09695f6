// TEMPORARY: minimal GGUF metadata parser used until src/gguf/reader.ts lands.
import { readFileSync } from "node:fs";
import type { GGUFValue } from "../../src/gguf/types.ts";

export function readGGUFMetadata(path: string): Map<string, GGUFValue> {
  const buf = readFileSync(path);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let p = 0;
  const td = new TextDecoder();
  const u32 = () => { const v = dv.getUint32(p, true); p += 4; return v; };
  const u64 = () => { const v = Number(dv.getBigUint64(p, true)); p += 8; return v; };
  const str = () => { const n = u64(); const s = td.decode(buf.subarray(p, p + n)); p += n; return s; };
  if (u32() !== 0x46554747) throw new Error("not gguf");
  u32(); u64(); const nkv = u64();
  const scalar = (t: number): GGUFValue => {
    switch (t) {
      case 0: return dv.getUint8(p++);
      case 1: return dv.getInt8(p++);
      case 2: { const v = dv.getUint16(p, true); p += 2; return v; }
      case 3: { const v = dv.getInt16(p, true); p += 2; return v; }
      case 4: { const v = dv.getUint32(p, true); p += 4; return v; }
      case 5: { const v = dv.getInt32(p, true); p += 4; return v; }
      case 6: { const v = dv.getFloat32(p, true); p += 4; return v; }
      case 7: return dv.getUint8(p++) !== 0;
      case 8: return str();
      case 10: { const v = dv.getBigUint64(p, true); p += 8; return v; }
      case 11: { const v = dv.getBigInt64(p, true); p += 8; return v; }
      case 12: { const v = dv.getFloat64(p, true); p += 8; return v; }
      default: throw new Error("bad type " + t);
    }
  };
  const m = new Map<string, GGUFValue>();
  for (let i = 0; i < nkv; i++) {
    const k = str();
    const t = u32();
    if (t === 9) {
      const at = u32(); const n = u64();
      if (at === 8) { const a: string[] = []; for (let j = 0; j < n; j++) a.push(str()); m.set(k, a); }
      else if (at === 6) { const a = new Float32Array(n); for (let j = 0; j < n; j++) a[j] = scalar(6) as number; m.set(k, a); }
      else if (at === 5) { const a = new Int32Array(n); for (let j = 0; j < n; j++) a[j] = scalar(5) as number; m.set(k, a); }
      else { const a: GGUFValue[] = []; for (let j = 0; j < n; j++) a.push(scalar(at)); m.set(k, a as GGUFValue); }
    } else m.set(k, scalar(t));
  }
  return m;
}
