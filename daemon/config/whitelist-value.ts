/**
 * `--rpc-portal-whitelist CIDR,...` (EasyTier's flag): who may call the gRPC portal. Items are
 * IPv4 or IPv6 CIDRs; a bare address means just that host. Normalized to "addr/len".
 */
import { isIP } from 'node:net';
import { badConfig } from '../errors.js';
import { parseIntInRange } from './values.js';

export function parseWhitelistCidr(raw: string, name: string): string {
  const [address = '', prefixText, extra] = raw.trim().split('/');
  const family = isIP(address);
  if (family === 0 || extra !== undefined) throw badConfig(name, `must be a CIDR like 10.0.0.0/8 or fd00::/8, got ${JSON.stringify(raw)}`);
  const max = family === 4 ? 32 : 128;
  return `${address}/${prefixText === undefined ? max : parseIntInRange(prefixText, name, 0, max)}`;
}
