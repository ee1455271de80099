/**
 * `--socks5` / ET_SOCKS5 / TOML `socks5_proxy`: "PORT", "IP:PORT" or EasyTier's URL form
 * "socks5://[USER:PASS@]IP:PORT". A bare port binds 127.0.0.1 (EasyTier binds every address):
 * a SOCKS server opens the whole virtual network to whoever reaches it, so facing the network is
 * something to ask for, ideally with a username and password.
 */
import { badConfig } from '../errors.js';
import type { Socks5Listen } from './node-config.js';
import { parseRpcPortal } from './values.js';

export function parseSocks5(raw: string, name: string): Socks5Listen {
  let text = raw.trim();
  let credentials: Socks5Listen['credentials'] = null;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    const m = /^socks5:\/\/(?:([^:@/]*):([^@/]*)@)?([^@/]+?)\/?$/i.exec(text);
    if (!m) throw badConfig(name, `must be PORT, IP:PORT or socks5://[USER:PASS@]IP:PORT, got ${JSON.stringify(raw)}`);
    if (m[1] !== undefined) {
      const [username, password] = [decodeURIComponent(m[1]), decodeURIComponent(m[2] ?? '')];
      if (username.length === 0 || username.length > 255 || password.length > 255) {
        throw badConfig(name, 'username must be 1-255 bytes and password at most 255');
      }
      credentials = { username, password };
    }
    text = m[3]!;
  }
  return { listen: parseRpcPortal(text, name), credentials };
}
