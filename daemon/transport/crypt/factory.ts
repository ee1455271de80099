/**
 * kcptun's --crypt name table. An unknown name, or a cipher whose constructor
 * fails, falls back to "aes" as kcptun does; `fellBack` says so, for the log.
 */
import { Blowfish } from './blowfish.js';
import { Cast5 } from './cast5.js';
import { CfbCrypt } from './cfb.js';
import { NodeCfbCrypt, type NodeCfbAlgorithm } from './node-cfb.js';
import { NoneCrypt } from './none.js';
import { Salsa20Crypt } from './salsa20.js';
import { Tea } from './tea.js';
import { Twofish } from './twofish.js';
import type { BlockCrypt } from './types.js';
import { XorCrypt } from './xor.js';
import { Xtea } from './xtea.js';

/** kcptun's TEA runs 16 rounds (8 cycles), not TEA's usual 64. */
const KCPTUN_TEA_ROUNDS = 16;

/**
 * The names whose datagrams carry the nonce + CRC header, each building its cipher
 * from the 32 derived key bytes (taking the prefix kcptun gives it).
 */
/** The names OpenSSL serves (here and in the transport addon): its CFB algorithm and key length. */
export const OPENSSL_CFB = {
  aes: ['aes-256-cfb', 32],
  'aes-128': ['aes-128-cfb', 16],
  'aes-192': ['aes-192-cfb', 24],
  '3des': ['des-ede3-cfb', 24],
  sm4: ['sm4-cfb', 16],
} as const satisfies Record<string, readonly [NodeCfbAlgorithm, number]>;

const openssl = (name: keyof typeof OPENSSL_CFB) => (pass: Uint8Array): BlockCrypt =>
  new NodeCfbCrypt(OPENSSL_CFB[name][0], pass.subarray(0, OPENSSL_CFB[name][1]));

const BLOCK_CRYPTS = {
  aes: openssl('aes'),
  'aes-128': openssl('aes-128'),
  'aes-192': openssl('aes-192'),
  '3des': openssl('3des'),
  sm4: openssl('sm4'),
  salsa20: (pass) => new Salsa20Crypt(pass.subarray(0, 32)),
  blowfish: (pass) => new CfbCrypt(new Blowfish(pass.subarray(0, 32))),
  twofish: (pass) => new CfbCrypt(new Twofish(pass.subarray(0, 32))),
  cast5: (pass) => new CfbCrypt(new Cast5(pass.subarray(0, 16))),
  tea: (pass) => new CfbCrypt(new Tea(pass.subarray(0, 16), KCPTUN_TEA_ROUNDS)),
  xtea: (pass) => new CfbCrypt(new Xtea(pass.subarray(0, 16))),
  xor: (pass) => new XorCrypt(pass),
  none: () => new NoneCrypt(),
} satisfies Record<string, (pass: Uint8Array) => BlockCrypt>;

export type BlockCryptName = keyof typeof BLOCK_CRYPTS;
/** Every name kcptun accepts: the block ones, the AEAD one, and "null" (no crypto layer at all). */
export type CryptName = BlockCryptName | 'aes-128-gcm' | 'null';

export function isBlockCryptName(name: string): name is BlockCryptName {
  return Object.hasOwn(BLOCK_CRYPTS, name);
}

export interface ResolvedBlockCrypt {
  readonly name: BlockCryptName;
  readonly block: BlockCrypt;
  /** True when `name` was not what the caller asked for (unknown name or constructor failure). */
  readonly fellBack: boolean;
}

/** kcptun's selection for the block names; anything else (including typos) becomes aes. */
export function newBlockCrypt(name: string, pass: Uint8Array): ResolvedBlockCrypt {
  if (isBlockCryptName(name)) {
    try {
      return { name, block: BLOCK_CRYPTS[name](pass), fellBack: false };
    } catch {
      // kcptun ignores the constructor error and uses aes; so do we, and say so.
    }
  }
  return { name: 'aes', block: BLOCK_CRYPTS.aes(pass), fellBack: true };
}
