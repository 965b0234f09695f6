// The parts of the WebAssembly JS API the kernels use (TypeScript's es2023 lib has no WebAssembly;
// Node provides it as a global).
declare namespace WebAssembly {
  class Module {
    constructor(bytes: Uint8Array<ArrayBuffer> | ArrayBuffer);
  }
  class Memory {
    constructor(desc: { initial: number; maximum?: number; shared?: boolean });
    readonly buffer: ArrayBuffer | SharedArrayBuffer;
    grow(deltaPages: number): number;
  }
  class Instance {
    constructor(module: Module, imports?: Record<string, Record<string, unknown>>);
    readonly exports: Record<string, unknown>;
  }
  function validate(bytes: Uint8Array<ArrayBuffer> | ArrayBuffer): boolean;
}
