/**
 * `--port-forward PROTO://LOCAL_IP:PORT/VIRTUAL_IP:PORT` (EasyTier's syntax; repeatable; also
 * ET_PORT_FORWARD and `easytier-cli port-forward add`). IPv6 addresses go in brackets. A bad spec is
 * one line naming the flag, the spec and what is wrong with it.
 */
import { isIP } from 'node:net';
import { badConfig } from '../errors.js';
import type { PortForwardSpec } from './node-config.js';
import { parsePort } from './values.js';

const SPEC = /^([a-z0-9]+):\/\/(\[[^\]]*\]|[^/[\]]*?):([^/:]*)\/(\[[^\]]*\]|[^/[\]]*?):([^/:]*)$/i;

export function parsePortForward(raw: string, name: string): PortForwardSpec {
  const text = raw.trim();
  const fail = (problem: string): never => {
    throw badConfig(name, `${JSON.stringify(raw)}: ${problem}`);
  };
  const m = SPEC.exec(text);
  if (!m) return fail('must be PROTO://LOCAL_IP:PORT/VIRTUAL_IP:PORT, e.g. tcp://0.0.0.0:8080/10.144.144.2:80');
  const proto = m[1]!.toLowerCase();
  if (proto !== 'tcp' && proto !== 'udp') return fail(`protocol must be tcp or udp, not ${JSON.stringify(m[1])}`);
  const addr = (hostText: string, portText: string, which: string): { ip: string; port: number } => {
    const host = hostText.replace(/^\[(.*)\]$/, '$1');
    if (isIP(host) === 0 || (isIP(host) === 6) !== hostText.startsWith('[')) {
      fail(`${which} address ${JSON.stringify(hostText)} is not an IP address${isIP(host) === 6 ? ' (IPv6 goes in brackets)' : ''}`);
    }
    const port = (() => {
      try {
        return parsePort(portText, name);
      } catch {
        return fail(`${which} port ${JSON.stringify(portText)} is not a port (1-65535)`);
      }
    })();
    return { ip: host, port };
  };
  return { proto, bind: addr(m[2]!, m[3]!, 'local'), dst: addr(m[4]!, m[5]!, 'virtual') };
}

/** The spec as the CLI shows it and as `remove` matches it. */
export function portForwardText(s: PortForwardSpec): string {
  const ep = (a: { ip: string; port: number }): string => (a.ip.includes(':') ? `[${a.ip}]:${a.port}` : `${a.ip}:${a.port}`);
  return `${s.proto}://${ep(s.bind)}/${ep(s.dst)}`;
}
