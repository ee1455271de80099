/**
 * kcptun's key derivation: the --key string becomes 32 bytes that every cipher
 * takes its key from (a prefix of it for the shorter-key ciphers).
 */
import { pbkdf2Sync } from 'node:crypto';

const KCPTUN_SALT = 'kcp-go';
const KCPTUN_ITERATIONS = 4096;
const KCPTUN_KEY_BYTES = 32;

/** PBKDF2-HMAC-SHA1(key as UTF-8, "kcp-go", 4096 iterations, 32 bytes). */
export function deriveKcptunKey(key: string): Uint8Array {
  return new Uint8Array(pbkdf2Sync(Buffer.from(key, 'utf8'), KCPTUN_SALT, KCPTUN_ITERATIONS, KCPTUN_KEY_BYTES, 'sha1'));
}
