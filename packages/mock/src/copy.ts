/**
 * Frame copies. A write is copied once (the caller may reuse its buffer) and each extra
 * receiver of a flooded frame gets its own copy (receivers may mutate what they get), so
 * copying is the mock's hot path.
 *
 * @module
 */
import { markAsUntransferable } from 'node:worker_threads';

// A frame of its own backing store would cost ~10x more than a view, so copies are carved out of
// a shared 64 KiB slab (what Node's Buffer pool does, with a slab sized for 1500-byte frames),
// as Buffer views: frames tapkit hands out are Buffers. Jumbo frames get their own memory.
const SLAB_SIZE = 64 * 1024;
const SLAB_FRAME_MAX = SLAB_SIZE / 4;

/** Copies frames; one per network, so that nothing is shared between networks. */
export class FrameCopier {
  #slab = new ArrayBuffer(0);
  #offset = 0;

  copy(frame: Uint8Array): Buffer {
    const length = frame.length;
    if (length > SLAB_FRAME_MAX) return Buffer.from(frame);
    if (this.#offset + length > this.#slab.byteLength) {
      this.#slab = new ArrayBuffer(SLAB_SIZE);
      // Transferring one frame's buffer to a worker would detach its neighbours in the slab.
      markAsUntransferable(this.#slab);
      this.#offset = 0;
    }
    const out = Buffer.from(this.#slab, this.#offset, length);
    out.set(frame);
    this.#offset = (this.#offset + length + 7) & ~7; // keep views 8-byte aligned
    return out;
  }
}
