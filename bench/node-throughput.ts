/**
 * Throughput (iperf3, one TCP stream) and ping RTT through a pair of easytier-core nodes, against
 * the same over the bare veth between their namespaces. Bench only; needs root, iperf3, a built
 * tree. Run: node dist/bench/node-throughput.js [seconds]
 */
import { fileURLToPath } from 'node:url';
import { Netns, type Namespace } from '../test/netns/lib/netns.js';

const seconds = Number(process.argv[2] ?? 5);
const CORE = fileURLToPath(new URL('../../bin/easytier-core', import.meta.url));

async function iperf(client: Namespace, server: Namespace, ip: string): Promise<number> {
  const srv = server.spawn(['iperf3', '-s', '-1', '--forceflush', '-B', ip]);
  // iperf3 prints its banner on stdout once listening.
  await srv.waitForLine(/Server listening/);
  const r = await client.exec(['iperf3', '-J', '-c', ip, '-t', String(seconds)], { timeoutMs: (seconds + 20) * 1000 });
  await srv.exited;
  return (JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second;
}

async function pingRtt(client: Namespace, ip: string): Promise<number> {
  const r = await client.exec(['ping', '-q', '-c', '50', '-i', '0.02', ip]);
  const m = /= [\d.]+\/([\d.]+)\//.exec(r.stdout);
  if (!m) throw new Error(`no RTT in: ${r.stdout}`);
  return Number(m[1]);
}

async function main(): Promise<void> {
  const net = await Netns.create('tt5-bench');
  try {
    const a = await net.ns('a');
    const b = await net.ns('b');
    await net.link(a, b, '10.252.0.1/24', '10.252.0.2/24');
    const bare = { bps: await iperf(a, b, '10.252.0.2'), rtt: await pingRtt(a, '10.252.0.2') };

    const rows: Array<[string, { bps: number; rtt: number }]> = [['bare veth', bare]];
    for (const scheme of ['udp', 'tcp']) {
      const args = (ip: string): string[] => ['--network-name', 'bench', '--network-secret', 'b', '-i', ip, '--dev-name', 'tt5tun'];
      const nb = b.spawn(['sh', '-c', `exec ${process.execPath} ${CORE} ${args('10.144.0.2').join(' ')} -l ${scheme}://0.0.0.0:11010 2>&1`]);
      const na = a.spawn(['sh', '-c', `exec ${process.execPath} ${CORE} ${args('10.144.0.1').join(' ')} --no-listener -p ${scheme}://10.252.0.2:11010 2>&1`]);
      await nb.waitForLine(/peer up/);
      await na.waitForLine(/peer up/);
      rows.push([`node pair (${scheme})`, { bps: await iperf(a, b, '10.144.0.2'), rtt: await pingRtt(a, '10.144.0.2') }]);
      await Promise.all([na.stop(), nb.stop()]);
    }
    console.log('path               Mbit/s   ratio   RTT ms   ratio');
    for (const [name, r] of rows) {
      console.log(`${name.padEnd(18)} ${(r.bps / 1e6).toFixed(0).padStart(7)} ${(r.bps / bare.bps).toFixed(3).padStart(7)}`
        + ` ${r.rtt.toFixed(3).padStart(8)} ${(r.rtt / bare.rtt).toFixed(1).padStart(7)}`);
    }
  } finally {
    await net.destroy();
  }
}

await main();
