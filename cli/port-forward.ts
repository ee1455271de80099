/**
 * `easytier-cli port-forward [list] | add SPEC | remove SPEC`: the node's port forwards, changed at
 * run time. SPEC is what --port-forward takes (PROTO://LOCAL_IP:PORT/VIRTUAL_IP:PORT) and is checked
 * here first, so a bad one is a usage error naming it. Every call prints the list after it.
 */
import { parsePortForward, portForwardText } from '../daemon/config/port-forward-value.js';
import type { Subcommand } from './subcommand.js';

interface PortForwardMessage {
  spec: string;
  proto: string;
  bind_addr: string;
  dst_addr: string;
  active: number;
}

const METHODS: Record<string, string> = { add: 'AddPortForward', remove: 'RemovePortForward' };

export const portForwardCommand: Subcommand = {
  name: 'port-forward',
  summary: 'list port forwards; add SPEC or remove SPEC (PROTO://IP:PORT/VIRTUAL_IP:PORT)',
  service: 'PortForwardRpc',
  method: 'ListPortForward',
  layout: 'list',
  columns: ['proto', 'bind_addr', 'dst_addr', 'active', 'spec'],
  request(args) {
    if (args.length === 0 || (args.length === 1 && args[0] === 'list')) return { method: 'ListPortForward', request: {} };
    const [action, spec, ...extra] = args;
    const method = METHODS[action!];
    if (!method) throw new Error(`port-forward: unknown action "${action}" (list, add or remove)`);
    if (spec === undefined || extra.length > 0) throw new Error(`port-forward ${action}: needs exactly one SPEC`);
    return { method, request: { spec: portForwardText(parsePortForward(spec, `port-forward ${action}`)) } };
  },
  toRows(response) {
    return (response as { forwards: PortForwardMessage[] }).forwards.map((f) => ({
      proto: f.proto, bind_addr: f.bind_addr, dst_addr: f.dst_addr, active: f.active, spec: f.spec,
    }));
  },
};
