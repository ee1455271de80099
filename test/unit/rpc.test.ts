import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import { TstierError } from '../../daemon/errors.js';
import { loadApi, SERVICE_NAMES, type ServiceName } from '../../daemon/rpc/api.js';
import { startRpcServer, type RpcServer } from '../../daemon/rpc/server.js';
import type { ControlPlaneSource } from '../../daemon/rpc/source.js';
import { STUB_NODE, STUB_PEERS, STUB_PROXY, STUB_ROUTES, stubSource } from './rpc-stub.js';

function call(address: string, service: ServiceName, method: string): Promise<Record<string, unknown>> {
  const client = new (loadApi().services[service])(address, grpc.credentials.createInsecure());
  return new Promise<Record<string, unknown>>((resolve, reject) => {
    (client[method] as (...args: unknown[]) => unknown).call(client, {}, { deadline: Date.now() + 5000 }, (err: Error | null, res: Record<string, unknown>) => {
      client.close();
      if (err) reject(err);
      else resolve(res);
    });
  });
}

interface Numbered { name: string; number: number }
/** The two reflection responses the test asks for (keepCase field names). */
interface ReflectionAnswer {
  list_services_response?: { service: { name: string }[] };
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
}

/** The descriptor proto-loader keeps for a message or enum of tstier.api. */
function descriptor(name: string): { field?: Numbered[]; value?: Numbered[] } {
  return (loadApi().packageDefinition[`tstier.api.${name}`] as { type: { field?: Numbered[]; value?: Numbered[] } }).type;
}

describe('rpc server', () => {
  let server: RpcServer;
  before(async () => { server = await startRpcServer(stubSource, '127.0.0.1:0'); });
  after(() => server.close());

  it('binds an ephemeral port and reports it', () => {
    assert.ok(server.port > 0);
    assert.equal(server.address, `127.0.0.1:${server.port}`);
  });

  it('NodeInfoRpc.ShowNodeInfo translates every field', async () => {
    const res = await call(server.address, 'NodeInfoRpc', 'ShowNodeInfo');
    assert.deepEqual(res['node_info'], {
      peer_id: STUB_NODE.peerId, instance_name: 'stub-instance', hostname: 'stub-host', network_name: 'stubnet',
      ipv4: '10.144.144.1/24', ipv6: 'fd00::1/64', proxy_cidrs: STUB_NODE.proxyCidrs, listeners: STUB_NODE.listeners,
      features: { kcp_input: true, quic_input: false, no_relay_kcp: true, no_relay_quic: false }, version: '0.1.0-stub', rpc_portal: '127.0.0.1:0',
      kcp_settings: STUB_NODE.kcpSettings,
    });
  });

  it('PeerRpc.ListPeers keeps 64-bit counters exact up to 2^53-1', async () => {
    const res = await call(server.address, 'PeerRpc', 'ListPeers');
    assert.deepEqual(res['peers'], STUB_PEERS.map((p) => ({
      peer_id: p.peerId, remote_uri: p.remoteUri, outbound: p.outbound, rtt_ms: p.rttMs, tx_bytes: p.txBytes,
      rx_bytes: p.rxBytes, tx_packets: p.txPackets, rx_packets: p.rxPackets, established_at_ms: p.establishedAt,
      tcp_transport: p.tcpTransport, tcp_reason: p.tcpReason, hostname: p.hostname ?? '', version: p.version ?? '',
    })));
  });

  it('RouteRpc.ListRoutes', async () => {
    const res = await call(server.address, 'RouteRpc', 'ListRoutes');
    assert.deepEqual(res['routes'], STUB_ROUTES.map((r) => ({
      peer_id: r.peerId, hostname: r.hostname, ipv4: r.ipv4, ipv6: r.ipv6, proxy_cidrs: r.proxyCidrs, next_hop_peer_id: r.nextHopPeerId,
      cost: r.cost, features: { kcp_input: r.features.kcpInput, quic_input: r.features.quicInput,
        no_relay_kcp: r.features.noRelayKcp ?? false, no_relay_quic: r.features.noRelayQuic ?? false },
      tcp_transport: r.tcpTransport, tcp_reason: r.tcpReason, version: r.version ?? '',
    })));
  });

  it('TcpProxyRpc.ListTcpProxyEntry uses EasyTier enum names and numbers', async () => {
    const res = await call(server.address, 'TcpProxyRpc', 'ListTcpProxyEntry');
    const entries = res['entries'] as Record<string, unknown>[];
    assert.deepEqual(entries.map((e) => [e['src'], e['dst'], e['start_time'], e['state'], e['transport_type'], e['role']]),
      STUB_PROXY.map((e) => [e.src, e.dst, e.startTime, e.state, e.transportType.toUpperCase(), e.role === 'src' ? 'Src' : 'Dst']));
    assert.deepEqual(entries.map((e) => [e['tx_bytes'], e['rx_bytes'], e['rtt_ms'], e['retransmits'], e['reason']]),
      STUB_PROXY.map((e) => [e.txBytes, e.rxBytes, e.rttMs, e.retransmits, e.reason]));
    // The wire numbers are EasyTier's: state Connected = 3, transport KCP = 1, fields 1..5.
    const numbered = (list: Numbered[] | undefined): string[] => (list ?? []).map((v) => `${v.name}=${v.number}`);
    assert.deepEqual(numbered(descriptor('TcpProxyEntry').field).slice(0, 5),
      ['src=1', 'dst=2', 'start_time=3', 'state=4', 'transport_type=5']);
    assert.deepEqual(numbered(descriptor('TcpProxyEntryState').value),
      ['Unknown=0', 'SynReceived=1', 'ConnectingDst=2', 'Connected=3', 'Closed=4', 'ClosingSrc=5', 'ClosingDst=6']);
    assert.deepEqual(numbered(descriptor('TcpProxyEntryTransportType').value), ['TCP=0', 'KCP=1', 'QUIC=2']);
  });

  it('server reflection lists every service and describes them', async () => {
    const require = createRequire(import.meta.url);
    const reflectionProto = require.resolve('@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto');
    const def = protoLoader.loadSync(reflectionProto, { keepCase: true, longs: Number, defaults: true });
    const Reflection = ((grpc.loadPackageDefinition(def)['grpc'] as grpc.GrpcObject)['reflection'] as grpc.GrpcObject)['v1'] as grpc.GrpcObject;
    const Client = Reflection['ServerReflection'] as grpc.ServiceClientConstructor;
    const client = new Client(server.address, grpc.credentials.createInsecure());
    try {
      const open = client['ServerReflectionInfo'] as (this: grpc.Client) => grpc.ClientDuplexStream<object, ReflectionAnswer>;
      const stream = open.call(client);
      const answers: ReflectionAnswer[] = [];
      const done = new Promise<void>((resolve, reject) => {
        stream.on('data', (msg: ReflectionAnswer) => { answers.push(msg); if (answers.length === 2) stream.end(); });
        stream.on('end', resolve);
        stream.on('error', reject);
      });
      stream.write({ list_services: '' });
      stream.write({ file_containing_symbol: 'tstier.api.TcpProxyRpc' });
      await done;
      const names = answers[0]!.list_services_response!.service.map((s) => s.name);
      for (const name of SERVICE_NAMES) assert.ok(names.includes(`tstier.api.${name}`), `${name} in ${names.join(', ')}`);
      const files = answers[1]!.file_descriptor_response!.file_descriptor_proto;
      assert.ok(files.length > 0);
      assert.ok(files.some((f) => f.includes('ListTcpProxyEntry')), 'descriptor of proxy.proto');
    } finally {
      client.close();
    }
  });

  it('a taken port is TSTIER_E_ADDR_IN_USE naming rpc_portal', async () => {
    await assert.rejects(startRpcServer(stubSource, server.address), (err: unknown) => {
      assert.ok(err instanceof TstierError);
      assert.equal(err.code, 'TSTIER_E_ADDR_IN_USE');
      assert.match(err.message, /^rpc_portal: 127\.0\.0\.1:\d+ is already in use/);
      return true;
    });
  });
});

describe('rpc server with a failing source', () => {
  it('answers INTERNAL naming the method, and keeps serving', async () => {
    const failing: ControlPlaneSource = {
      ...stubSource,
      proxyEntries: () => { throw new Error('flow table exploded'); },
    };
    const server = await startRpcServer(failing, '127.0.0.1:0');
    try {
      await assert.rejects(call(server.address, 'TcpProxyRpc', 'ListTcpProxyEntry'), (err: grpc.ServiceError) => {
        assert.equal(err.code, grpc.status.INTERNAL);
        assert.match(err.details, /ListTcpProxyEntry: flow table exploded/);
        return true;
      });
      const res = await call(server.address, 'RouteRpc', 'ListRoutes');
      assert.equal((res['routes'] as unknown[]).length, STUB_ROUTES.length);
    } finally {
      await server.close();
    }
  });
});
