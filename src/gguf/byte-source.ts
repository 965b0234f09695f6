// Random-access byte sources for the GGUF reader: a file (read lazily through a descriptor) or an
// in-memory buffer. The reader never maps or slurps a whole file: a peer holding layers 10–19 of a
// 40 GB model reads the header, the tensor index and those layers' bytes, nothing else.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";

export interface ByteSource {
  /** Total size in bytes. */
  readonly size: number;
  /** Copies `length` bytes at absolute `offset` into `dst` (at `dstOffset`). Throws past the end. */
  readInto(offset: number, dst: Uint8Array, dstOffset: number, length: number): void;
  close(): void;
}

/** Reads from a file descriptor with pread; every byte read is counted in `bytesRead`. */
export class FileSource implements ByteSource {
  readonly size: number;
  readonly path: string;
  bytesRead = 0;
  private fd: number;

  constructor(path: string) {
    this.path = path;
    this.fd = openSync(path, "r");
    this.size = fstatSync(this.fd).size;
  }

  readInto(offset: number, dst: Uint8Array, dstOffset: number, length: number): void {
    if (this.fd < 0) throw new Error(`${this.path}: file is closed`);
    if (offset < 0 || offset + length > this.size) {
      throw new RangeError(`${this.path}: read of ${length} bytes at offset ${offset} is past the end of the file (${this.size} bytes)`);
    }
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, dst, dstOffset + done, length - done, offset + done);
      if (n === 0) throw new RangeError(`${this.path}: unexpected end of file at offset ${offset + done}`);
      done += n;
    }
    this.bytesRead += length;
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

/** A source over bytes already in memory (tests, fuzzing, files received whole). */
export class BufferSource implements ByteSource {
  private readonly bytes: Uint8Array;
  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }
  get size(): number {
    return this.bytes.length;
  }
  readInto(offset: number, dst: Uint8Array, dstOffset: number, length: number): void {
    if (offset < 0 || offset + length > this.bytes.length) {
      throw new RangeError(`read of ${length} bytes at offset ${offset} is past the end of the data (${this.bytes.length} bytes)`);
    }
    dst.set(this.bytes.subarray(offset, offset + length), dstOffset);
  }
  close(): void {}
}
