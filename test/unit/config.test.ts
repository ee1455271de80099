import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadNodeConfig } from '../../daemon/config/load.js';
import type { NodeConfig } from '../../daemon/config/node-config.js';
import { OPTIONS } from '../../daemon/config/options.js';
import { TstierError } from '../../daemon/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'tstier-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let fileCount = 0;
function tomlFile(text: string): string {
  const path = join(dir, `c${fileCount++}.toml`);
  writeFileSync(path, text);
  return path;
}

function load(argv: string[], env: NodeJS.ProcessEnv = {}): NodeConfig {
  const result = loadNodeConfig(argv, env);
  assert.equal(result.kind, 'config');
  return result.config;
}

/** Asserts a TSTIER_E_BAD_CONFIG whose message starts with the key, and returns the message. */
function rejects(argv: string[], key: string, env: NodeJS.ProcessEnv = {}): string {
  try {
    loadNodeConfig(argv, env);
  } catch (err) {
    assert.ok(err instanceof TstierError, `not a TstierError: ${String(err)}`);
    assert.equal(err.code, 'TSTIER_E_BAD_CONFIG');
    assert.ok(err.message.startsWith(`${key}: `), `message "${err.message}" does not start with "${key}: "`);
    assert.ok(!err.message.includes('\n'), 'one line');
    return err.message;
  }
  assert.fail(`accepted ${JSON.stringify(argv)} ${JSON.stringify(env)}`);
}

describe('config defaults', () => {
  it('match EasyTier except the loopback rpc portal', () => {
    const c = load([]);
    assert.equal(c.networkName, 'default');
    assert.equal(c.networkSecret, '');
    assert.equal(c.instanceName, 'default');
    assert.equal(c.ipv4, undefined);
    assert.deepEqual(c.listeners, ['tcp://0.0.0.0:11010', 'udp://0.0.0.0:11010']);
    assert.deepEqual(c.peers, []);
    assert.deepEqual(c.proxyNetworks, []);
    assert.equal(c.rpcPortal, '127.0.0.1:15888');
    assert.equal(c.mtu, 1380);
    assert.equal(c.devName, '');
    assert.equal(c.logLevel, 'info');
    for (const flag of ['noTun', 'useSmoltcp', 'enableKcpProxy', 'disableKcpInput', 'enableQuicProxy',
      'disableQuicInput', 'disableRelayKcp', 'disableRelayQuic', 'proxyOptimistic'] as const) {
      assert.equal(c[flag], false, flag);
    }
  });
  it('--help returns the usage, listing every flag', () => {
    const result = loadNodeConfig(['--mtu', '1400', '-h'], {});
    assert.equal(result.kind, 'help');
    for (const def of OPTIONS) assert.ok(result.text.includes(`--${def.long}`), def.long);
  });
});

describe('config flags', () => {
  it('sets every string and number option', () => {
    const c = load(['--network-name', 'net1', '--network-secret=s3cret', '-m', 'inst', '--hostname', 'box',
      '--dev-name', 'et0', '--mtu', '1400', '--log-level', 'DEBUG', '-r', '127.0.0.2:1234']);
    assert.equal(c.networkName, 'net1');
    assert.equal(c.networkSecret, 's3cret');
    assert.equal(c.instanceName, 'inst');
    assert.equal(c.hostname, 'box');
    assert.equal(c.devName, 'et0');
    assert.equal(c.mtu, 1400);
    assert.equal(c.logLevel, 'debug');
    assert.equal(c.rpcPortal, '127.0.0.2:1234');
  });
  it('sets every boolean flag, bare or with an explicit value', () => {
    const names = ['no-tun', 'use-smoltcp', 'enable-kcp-proxy', 'disable-kcp-input', 'enable-quic-proxy',
      'disable-quic-input', 'disable-relay-kcp', 'disable-relay-quic', 'proxy-optimistic'];
    const fields = ['noTun', 'useSmoltcp', 'enableKcpProxy', 'disableKcpInput', 'enableQuicProxy',
      'disableQuicInput', 'disableRelayKcp', 'disableRelayQuic', 'proxyOptimistic'] as const;
    const bare = load(names.map((n) => `--${n}`));
    for (const f of fields) assert.equal(bare[f], true, f);
    const explicitFalse = load(names.flatMap((n) => [`--${n}`, 'false']), { ET_NO_TUN: 'true' });
    for (const f of fields) assert.equal(explicitFalse[f], false, f);
    assert.equal(load(['--no-tun=true']).noTun, true);
  });
  it('--quic-congestion: bbr by default; cubic and newreno accepted; anything else names the flag', () => {
    assert.equal(load([]).quicCongestion, 'bbr');
    assert.equal(load(['--quic-congestion', 'CUBIC']).quicCongestion, 'cubic');
    assert.equal(load([], { ET_QUIC_CONGESTION: 'newreno' }).quicCongestion, 'newreno');
    assert.throws(() => load(['--quic-congestion', 'vegas']), /^TstierError: --quic-congestion: must be one of bbr, cubic, newreno/);
  });
  it('-i: a bare address gets /24, an explicit prefix is kept', () => {
    assert.deepEqual(load(['-i', '10.144.144.1']).ipv4, { address: '10.144.144.1', prefix: 24 });
    assert.deepEqual(load(['--ipv4=10.144.144.1/16']).ipv4, { address: '10.144.144.1', prefix: 16 });
    assert.deepEqual(load(['-i10.1.2.3/32']).ipv4, { address: '10.1.2.3', prefix: 32 });
  });
  it('--ipv6: a bare address gets /64, an explicit prefix is kept, env and TOML set it too', () => {
    assert.equal(load([]).ipv6, undefined);
    assert.deepEqual(load(['--ipv6', 'fd00::1']).ipv6, { address: 'fd00::1', prefix: 64 });
    assert.deepEqual(load(['--ipv6=fd00:1::7/48']).ipv6, { address: 'fd00:1::7', prefix: 48 });
    assert.deepEqual(load([], { ET_IPV6: 'fd00::2/128' }).ipv6, { address: 'fd00::2', prefix: 128 });
    assert.deepEqual(load(['-c', tomlFile('ipv6 = "fd00::3"\n')]).ipv6, { address: 'fd00::3', prefix: 64 });
    assert.deepEqual(load(['-c', tomlFile('ipv6 = "fd00::3"\n'), '--ipv6', 'fd00::4/96']).ipv6, { address: 'fd00::4', prefix: 96 });
  });
  it('-p: comma lists, repeatable, hostnames and IPv6 allowed, duplicates dropped', () => {
    assert.deepEqual(load(['-p', 'udp://10.1.0.2:11010,tcp://peer.example:11010', '--peers', 'TCP://[::1]:9',
      '-p', 'udp://10.1.0.2:11010']).peers,
    ['udp://10.1.0.2:11010', 'tcp://peer.example:11010', 'tcp://[::1]:9']);
  });
  it('-l: port, ip, ip:port, proto, proto:port and URI forms', () => {
    const cases: [string, string[]][] = [
      ['12000', ['tcp://0.0.0.0:12000', 'udp://0.0.0.0:12000']],
      ['10.0.0.5', ['tcp://10.0.0.5:11010', 'udp://10.0.0.5:11010']],
      ['10.0.0.5:7000', ['tcp://10.0.0.5:7000', 'udp://10.0.0.5:7000']],
      ['[::1]:7000', ['tcp://[::1]:7000', 'udp://[::1]:7000']],
      ['udp', ['udp://0.0.0.0:11010']],
      ['tcp:9000', ['tcp://0.0.0.0:9000']],
      ['udp://127.0.0.1:9001', ['udp://127.0.0.1:9001']],
      ['tcp://[::]:9002', ['tcp://[::]:9002']],
    ];
    for (const [input, expected] of cases) assert.deepEqual(load(['-l', input]).listeners, expected, input);
    assert.deepEqual(load(['-l', 'udp:1,tcp:2', '--listeners', 'udp:3']).listeners,
      ['udp://0.0.0.0:1', 'tcp://0.0.0.0:2', 'udp://0.0.0.0:3']);
  });
  it('faketcp: only where named, by -l, -p, TOML and ET_*; bare forms never expand to it', { skip: process.getuid?.() !== 0 && 'faketcp URIs need CAP_NET_RAW' }, () => {
    assert.deepEqual(load(['-l', 'faketcp:11013', '-p', 'faketcp://10.1.0.2:11013']).listeners, ['faketcp://0.0.0.0:11013']);
    assert.deepEqual(load(['-p', 'faketcp://10.1.0.2:11013']).peers, ['faketcp://10.1.0.2:11013']);
    assert.deepEqual(load(['-c', tomlFile('listeners = ["faketcp://0.0.0.0:11013"]\n')]).listeners, ['faketcp://0.0.0.0:11013']);
    assert.deepEqual(load([], { ET_LISTENERS: 'faketcp://10.0.0.5:1' }).listeners, ['faketcp://10.0.0.5:1']);
    assert.deepEqual(load(['-l', '12000']).listeners, ['tcp://0.0.0.0:12000', 'udp://0.0.0.0:12000']);
    rejects(['-p', 'faketcp://[fd00::2]:11013'], 'peers');
    rejects(['-l', 'faketcp://[::]:11013'], 'listeners');
  });
  it('--no-listener empties the listeners, even given -l', () => {
    assert.deepEqual(load(['--no-listener']).listeners, []);
    assert.deepEqual(load(['-l', 'udp:1', '--no-listener']).listeners, []);
  });
  it('-n: cidr and cidr->mapped, repeatable', () => {
    assert.deepEqual(load(['-n', '192.168.1.0/24,10.0.0.0/8', '--proxy-networks', '172.16.0.0/16->10.99.0.0/16']).proxyNetworks, [
      { cidr: '192.168.1.0/24' }, { cidr: '10.0.0.0/8' }, { cidr: '172.16.0.0/16', mappedCidr: '10.99.0.0/16' },
    ]);
  });
  it('-r: a bare port binds loopback; port 0 is allowed', () => {
    assert.equal(load(['-r', '16000']).rpcPortal, '127.0.0.1:16000');
    assert.equal(load(['--rpc-portal', '0.0.0.0:0']).rpcPortal, '0.0.0.0:0');
    assert.equal(load(['-r', '[::1]:15888']).rpcPortal, '[::1]:15888');
  });
  it('a repeated scalar flag keeps the last value', () => {
    assert.equal(load(['--mtu', '1300', '--mtu', '1200']).mtu, 1200);
  });
  it('TSTIER_LOG_LEVEL is the default log level; --log-level and ET_LOG_LEVEL override it', () => {
    assert.equal(load([], { TSTIER_LOG_LEVEL: 'DEBUG' }).logLevel, 'debug');
    assert.equal(load([], { TSTIER_LOG_LEVEL: 'debug', ET_LOG_LEVEL: 'warn' }).logLevel, 'warn');
    assert.equal(load(['--log-level', 'error'], { TSTIER_LOG_LEVEL: 'debug' }).logLevel, 'error');
    assert.equal(load([], { TSTIER_LOG_LEVEL: 'nonsense' }).logLevel, 'info');
  });
  it('--console-log-level is accepted as EasyTier spells it', () => {
    assert.equal(load(['--console-log-level', 'warn']).logLevel, 'warn');
  });
});

describe('config errors name the flag', () => {
  it('bad values', () => {
    assert.equal(rejects(['--mtu', 'abc'], '--mtu'), '--mtu: must be an integer in 576..9000, got "abc"');
    rejects(['--mtu', '100'], '--mtu');
    rejects(['--mtu', '9001'], '--mtu');
    rejects(['-i', '10.0.0.300'], '-i');
    rejects(['--ipv4', '10.0.0.1/33'], '--ipv4');
    rejects(['--ipv6', '10.0.0.1'], '--ipv6');
    rejects(['--ipv6', 'fd00::1/129'], '--ipv6');
    rejects(['--ipv6', 'fd00::1/0'], '--ipv6');
    rejects(['--ipv6', 'fe80::1%eth0'], '--ipv6');
    rejects(['--ipv6', 'fd00::1/64/1'], '--ipv6');
    rejects(['-p', 'udp://10.0.0.1'], '-p');
    rejects(['-p', '10.0.0.1:11010'], '-p');
    rejects(['-p', 'wg://10.0.0.1:11011'], '-p');
    rejects(['-p', 'udp://10.0.0.1:70000'], '-p');
    rejects(['-l', 'bogus:x'], '-l');
    rejects(['-l', 'udp://host.example:1'], '-l');
    rejects(['-l', '70000'], '-l');
    rejects(['-n', '192.168.1.1/24'], '-n');
    rejects(['-n', '192.168.1.0/24->10.0.0.0/16'], '-n');
    rejects(['-n', '192.168.1.0'], '-n');
    rejects(['-r', 'nowhere'], '-r');
    rejects(['--rpc-portal', '127.0.0.1:99999'], '--rpc-portal');
    rejects(['--no-tun=maybe'], '--no-tun');
    rejects(['--dev-name', 'a/b'], '--dev-name');
    rejects(['--dev-name', 'sixteen-chars-xx'], '--dev-name');
    rejects(['--log-level', 'loud'], '--log-level');
    rejects(['--network-name', ''], '--network-name');
    rejects(['-m', ''], '-m');
  });
  it('names and addresses past their limits', () => {
    assert.equal(load(['--network-name', 'n'.repeat(1024)]).networkName.length, 1024);
    rejects(['--network-name', 'n'.repeat(1025)], '--network-name');
    rejects([], 'ET_NETWORK_NAME', { ET_NETWORK_NAME: 'é'.repeat(513) }); // 1026 bytes in UTF-8
    assert.equal(load(['--hostname', 'h'.repeat(255)]).hostname.length, 255);
    rejects(['--hostname', 'h'.repeat(256)], '--hostname');
    for (const ip of ['255.255.255.255', '127.0.0.1', '0.0.0.0', '169.254.1.1', '239.1.1.1', '240.0.0.1',
      '10.0.0.0/8', '10.255.255.255/8', '192.168.7.0', '192.168.7.255', '192.168.7.4/30', '192.168.7.7/30']) {
      rejects(['-i', ip], '-i');
    }
    for (const ip of ['192.168.7.5/30', '192.168.7.6/31', '192.168.7.7/31', '192.168.7.0/32', '10.255.255.254/8']) {
      assert.equal(load(['-i', ip]).ipv4?.address, ip.split('/')[0]);
    }
    for (const ip of ['::', '::1', 'ff02::1', 'fe80::1']) rejects(['--ipv6', ip], '--ipv6');
  });
  it('unknown flags, stray arguments and missing values', () => {
    rejects(['--dhcp'], '--dhcp');
    rejects(['-x'], '-x');
    rejects(['stray'], 'stray');
    rejects(['--mtu'], '--mtu');
    rejects(['-i'], '-i');
  });
});

describe('config file (EasyTier TOML)', () => {
  const full = `
instance_name = "from-file"
hostname = "filehost"
ipv4 = "10.144.144.7"
listeners = ["udp://0.0.0.0:12010", "tcp:12011"]
rpc_portal = "0.0.0.0:15888"

[network_identity]
network_name = "filenet"
network_secret = "filesecret"

[[peer]]
uri = "udp://10.1.0.2:11010"

[[peer]]
uri = "tcp://10.1.0.3:11010"

[[proxy_network]]
cidr = "192.168.50.0/24"

[[proxy_network]]
cidr = "192.168.60.0/24"
mapped_cidr = "10.60.0.0/24"
allow = ["tcp"]

[flags]
no_tun = true
use_smoltcp = true
enable_kcp_proxy = true
disable_kcp_input = true
enable_quic_proxy = true
disable_quic_input = true
disable_relay_kcp = true
disable_relay_quic = true
proxy_optimistic = true
proxy_flow_timeout = 90
dev_name = "tst0"
mtu = 1300
enable_encryption = true
some_future_flag = 7

[console_logger]
level = "warn"
`;
  it('reads every supported key and warns about the rest', () => {
    const result = loadNodeConfig(['-c', tomlFile(full)], {});
    assert.equal(result.kind, 'config');
    const c = result.config;
    assert.equal(c.instanceName, 'from-file');
    assert.equal(c.hostname, 'filehost');
    assert.deepEqual(c.ipv4, { address: '10.144.144.7', prefix: 24 });
    assert.deepEqual(c.listeners, ['udp://0.0.0.0:12010', 'tcp://0.0.0.0:12011']);
    assert.equal(c.networkName, 'filenet');
    assert.equal(c.networkSecret, 'filesecret');
    assert.deepEqual(c.peers, ['udp://10.1.0.2:11010', 'tcp://10.1.0.3:11010']);
    assert.deepEqual(c.proxyNetworks, [{ cidr: '192.168.50.0/24' }, { cidr: '192.168.60.0/24', mappedCidr: '10.60.0.0/24' }]);
    for (const flag of ['noTun', 'useSmoltcp', 'enableKcpProxy', 'disableKcpInput', 'enableQuicProxy',
      'disableQuicInput', 'disableRelayKcp', 'disableRelayQuic', 'proxyOptimistic'] as const) {
      assert.equal(c[flag], true, flag);
    }
    assert.equal(c.devName, 'tst0');
    assert.equal(c.mtu, 1300);
    assert.equal(c.proxyFlowTimeout, 90);
    assert.equal(c.logLevel, 'warn');
    // rpc_portal is process-level since EasyTier 2.5: ignored in the file, with a warning.
    assert.equal(c.rpcPortal, '127.0.0.1:15888');
    const warned = result.warnings.join('\n');
    assert.match(warned, /rpc_portal/);
    assert.match(warned, /flags\.enable_encryption/);
    assert.match(warned, /flags\.some_future_flag/);
    assert.doesNotMatch(warned, /flags\.mtu|proxy_network|peer/);
  });
  it('ET_CONFIG_FILE names the file when -c is absent', () => {
    assert.equal(load([], { ET_CONFIG_FILE: tomlFile('instance_name = "viaenv"\n') }).instanceName, 'viaenv');
  });
  it('bad values name their key', () => {
    const cases: [string, string][] = [
      ['[flags]\nmtu = "abc"\n', 'flags.mtu'],
      ['[flags]\nmtu = 1400.5\n', 'flags.mtu'],
      ['[flags]\nno_tun = "perhaps"\n', 'flags.no_tun'],
      ['[flags]\nenable_kcp_proxy = [true]\n', 'flags.enable_kcp_proxy'],
      ['ipv4 = "300.1.1.1"\n', 'ipv4'],
      ['ipv6 = "fd00::g"\n', 'ipv6'],
      ['listeners = "udp://0.0.0.0:1"\n', 'listeners'],
      ['listeners = ["udp://0.0.0.0:1", "wg://0.0.0.0:2"]\n', 'listeners[1]'],
      ['[[peer]]\nuri = "udp://10.0.0.1:1"\n[[peer]]\nuri = "udp://10.0.0.1"\n', 'peer[1].uri'],
      ['[[peer]]\nurl = "udp://10.0.0.1:1"\n', 'peer[0].uri'],
      ['peer = "udp://10.0.0.1:1"\n', 'peer'],
      ['[[proxy_network]]\ncidr = "10.0.0.1/8"\n', 'proxy_network[0].cidr'],
      ['[[proxy_network]]\ncidr = "10.0.0.0/8"\nmapped_cidr = "11.0.0.0/16"\n', 'proxy_network[0].mapped_cidr'],
      ['[network_identity]\nnetwork_name = ""\n', 'network_identity.network_name'],
      ['[console_logger]\nlevel = "chatty"\n', 'console_logger.level'],
    ];
    for (const [text, key] of cases) {
      const path = tomlFile(text);
      const message = rejects(['-c', path], key);
      assert.ok(message.endsWith(`(in ${path})`), message);
    }
  });
  it('garbage TOML gives one line naming the file and the position', () => {
    const path = tomlFile('instance_name = "ok"\n[flags\nmtu = = 3\n');
    const message = rejects(['-c', path], path);
    assert.match(message, /line 2, column \d+/);
  });
  it('a missing file is a config error', () => {
    assert.match(rejects(['-c', join(dir, 'absent.toml')], '--config-file'), /ENOENT/);
  });
});

describe('config precedence: flags > env > file > defaults', () => {
  it('each layer overrides the one below, key by key', () => {
    const path = tomlFile('instance_name = "file"\nhostname = "file"\n[network_identity]\nnetwork_name = "file"\n[flags]\nmtu = 1300\n');
    const env = { ET_NETWORK_NAME: 'env', ET_MTU: '1350', ET_HOSTNAME: 'env' };
    const c = load(['-c', path, '--mtu', '1400'], env);
    assert.equal(c.mtu, 1400); // flag over env over file
    assert.equal(c.networkName, 'env'); // env over file
    assert.equal(c.hostname, 'env');
    assert.equal(c.instanceName, 'file'); // file over default
    assert.equal(c.networkSecret, ''); // default
  });
  it('a higher source replaces a lower list rather than merging', () => {
    const path = tomlFile('[[peer]]\nuri = "udp://10.0.0.1:1"\n');
    assert.deepEqual(load(['-c', path], { ET_PEERS: 'tcp://10.0.0.2:2,tcp://10.0.0.3:3' }).peers,
      ['tcp://10.0.0.2:2', 'tcp://10.0.0.3:3']);
    assert.deepEqual(load(['-c', path, '-p', 'udp://10.0.0.9:9'], { ET_PEERS: 'tcp://10.0.0.2:2' }).peers,
      ['udp://10.0.0.9:9']);
  });
  it('every env override is read, and bad env values name the variable', () => {
    const c = load([], {
      ET_NETWORK_NAME: 'n', ET_NETWORK_SECRET: 's', ET_IPV4: '10.0.0.1/16', ET_PEERS: 'udp://1.2.3.4:5',
      ET_LISTENERS: 'udp:6', ET_PROXY_NETWORKS: '10.9.0.0/16', ET_RPC_PORTAL: '7000', ET_NO_TUN: '1',
      ET_USE_SMOLTCP: 'true', ET_ENABLE_KCP_PROXY: 'true', ET_DISABLE_KCP_INPUT: 'true', ET_ENABLE_QUIC_PROXY: 'true',
      ET_DISABLE_QUIC_INPUT: 'true', ET_DISABLE_RELAY_KCP: 'true', ET_DISABLE_RELAY_QUIC: 'true',
      ET_PROXY_OPTIMISTIC: 'yes', ET_DEV_NAME: 'x0', ET_MTU: '1200', ET_INSTANCE_NAME: 'i', ET_HOSTNAME: 'h',
      ET_LOG_LEVEL: 'error', ET_QUIC_CONGESTION: 'cubic', ET_IPV6: 'fd00::1', ET_PROXY_FLOW_TIMEOUT: '45',
      ET_SOCKS5: 'socks5://u:p@0.0.0.0:1080', ET_SOCKS5_ALLOW_OUTSIDE: 'true',
      ET_PORT_FORWARD: 'udp://127.0.0.1:53/10.0.0.2:53', ET_METRICS_LISTEN: '9100',
    });
    assert.deepEqual(c, {
      instanceName: 'i', hostname: 'h', networkName: 'n', networkSecret: 's', ipv4: { address: '10.0.0.1', prefix: 16 },
      ipv6: { address: 'fd00::1', prefix: 64 },
      listeners: ['udp://0.0.0.0:6'], peers: ['udp://1.2.3.4:5'], proxyNetworks: [{ cidr: '10.9.0.0/16' }],
      rpcPortal: '127.0.0.1:7000', devName: 'x0', mtu: 1200, noTun: true, useSmoltcp: true, enableKcpProxy: true,
      disableKcpInput: true, enableQuicProxy: true, disableQuicInput: true, disableRelayKcp: true,
      disableRelayQuic: true, proxyOptimistic: true, proxyFlowTimeout: 45, logLevel: 'error', quicCongestion: 'cubic',
      socks5: { listen: '0.0.0.0:1080', credentials: { username: 'u', password: 'p' } }, socks5AllowOutside: true,
      portForwards: [{ proto: 'udp', bind: { ip: '127.0.0.1', port: 53 }, dst: { ip: '10.0.0.2', port: 53 } }],
      metricsListen: '127.0.0.1:9100',
    });
    assert.deepEqual(load([], { ET_NO_LISTENER: 'true' }).listeners, []);
    assert.equal(load([]).proxyFlowTimeout, 30);
    assert.equal(load(['--proxy-flow-timeout', '5']).proxyFlowTimeout, 5);
    rejects([], 'ET_PROXY_FLOW_TIMEOUT', { ET_PROXY_FLOW_TIMEOUT: '0' });
    rejects(['--proxy-flow-timeout', 'soon'], '--proxy-flow-timeout');
    rejects([], 'ET_MTU', { ET_MTU: 'big' });
    rejects([], 'ET_IPV4', { ET_IPV4: 'nope' });
    rejects([], 'ET_IPV6', { ET_IPV6: '1.2.3.4' });
    rejects([], 'ET_NO_TUN', { ET_NO_TUN: 'sometimes' });
    rejects([], 'ET_PEERS', { ET_PEERS: 'udp://1.2.3.4:5,garbage' });
  });
  it('a bad env value is an error even when a flag overrides it', () => {
    // Validation happens per source, so a typo in the environment is never silently masked.
    rejects(['--mtu', '1400'], 'ET_MTU', { ET_MTU: 'oops' });
  });
  it('--proxy-redirect is read from every source, and refuses the userspace stack and --no-tun', () => {
    assert.equal(load(['--proxy-redirect']).proxyRedirect, true);
    assert.equal(load([], { ET_PROXY_REDIRECT: 'true' }).proxyRedirect, true);
    assert.equal(load([]).proxyRedirect, undefined);
    assert.match(rejects(['--proxy-redirect', '--use-smoltcp'], '--proxy-redirect'), /--use-smoltcp/);
    assert.match(rejects(['--proxy-redirect', '--no-tun'], '--proxy-redirect'), /--no-tun/);
  });
  it('unset, --proxy-redirect is the default that the userspace stack and --no-tun turn off; false asks for kernel NAT', () => {
    assert.equal(load(['--use-smoltcp']).useSmoltcp, true);
    assert.equal(load(['--no-tun']).noTun, true);
    assert.equal(load(['--proxy-redirect', 'false']).proxyRedirect, false);
    assert.equal(load(['--proxy-redirect=false', '--use-smoltcp']).proxyRedirect, false);
    assert.equal(load([], { ET_PROXY_REDIRECT: 'false' }).proxyRedirect, false);
  });
});
