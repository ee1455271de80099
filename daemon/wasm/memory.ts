/**
 * Views of an instance's linear memory. Growing the memory detaches every view of the old buffer,
 * so each accessor checks the buffer and renews its view only when it changed (no allocation per
 * call otherwise).
 */
export class WasmMemory {
  private u8 = new Uint8Array(0);
  private f64 = new Float64Array(0);

  constructor(private memory: { readonly buffer: ArrayBuffer }) {}

  /** Points at a new instance's memory (after a restart). */
  rebind(memory: { readonly buffer: ArrayBuffer }): void {
    this.memory = memory;
  }

  bytes(): Uint8Array {
    if (this.u8.buffer !== this.memory.buffer) this.u8 = new Uint8Array(this.memory.buffer);
    return this.u8;
  }

  /** The memory as f64s: index with `ptr / 8` (the crates align f64 regions). */
  float64(): Float64Array {
    if (this.f64.buffer !== this.memory.buffer) this.f64 = new Float64Array(this.memory.buffer);
    return this.f64;
  }

  get byteLength(): number {
    return this.memory.buffer.byteLength;
  }
}
