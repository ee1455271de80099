/**
 * Sliding anti-replay window over 64-bit packet counters (RFC 6479, as WireGuard does it).
 * A ring of 2048 bits; bits are cleared a 32-bit word at a time as the window slides, so the
 * usable width is 2048 - 32 counters behind the highest one seen.
 *
 * Use it in two steps: `check` before the (costly) AEAD open to drop obvious replays early,
 * `update` only after the packet authenticated — a forged counter must never move the window.
 */

const WORD_BITS = 32;
const RING_BITS = 2048;
const RING_WORDS = RING_BITS / WORD_BITS;
/** Counters at least this far behind the highest one seen are rejected as too old. */
export const REPLAY_WINDOW = RING_BITS - WORD_BITS;
/** Counters are JS numbers; stop well before they lose integer precision. */
export const MAX_COUNTER = 2 ** 52;

export class ReplayWindow {
  private readonly ring = new Uint32Array(RING_WORDS);
  /** Highest counter accepted so far; -1 before the first. */
  private top = -1;

  /** Whether `counter` may be new: not seen before and not older than the window. */
  check(counter: number): boolean {
    if (!(counter >= 0 && counter < MAX_COUNTER)) return false;
    if (counter > this.top) return true;
    if (this.top - counter >= REPLAY_WINDOW) return false;
    const word = Math.floor(counter / WORD_BITS) % RING_WORDS;
    return (this.ring[word]! & (1 << (counter % WORD_BITS))) === 0;
  }

  /** Marks `counter` seen; returns false (and changes nothing) if `check` would reject it. */
  update(counter: number): boolean {
    if (!this.check(counter)) return false;
    if (counter > this.top) {
      const oldWord = this.top < 0 ? -1 : Math.floor(this.top / WORD_BITS);
      const newWord = Math.floor(counter / WORD_BITS);
      const toClear = Math.min(newWord - oldWord, RING_WORDS);
      for (let i = 1; i <= toClear; i++) this.ring[(newWord - toClear + i) % RING_WORDS] = 0;
      this.top = counter;
    }
    const word = Math.floor(counter / WORD_BITS) % RING_WORDS;
    this.ring[word] = this.ring[word]! | (1 << (counter % WORD_BITS));
    return true;
  }
}
