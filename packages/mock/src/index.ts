/**
 * `@tapkit/mock`: an in-memory tapkit backend — a learning switch with devices and virtual
 * hosts on its ports, seeded fault injection and pcap capture. No privileges, no native code:
 * for tests and CI.
 *
 * @example
 * ```ts
 * import { createMockNetwork } from '@tapkit/mock';
 * const net = createMockNetwork({ seed: 42 });
 * const host = net.addHost({ ipv4: '10.0.0.2/24' });
 * // dev.mac is the device's OS station, which holds 10.0.0.1 and answers ARP and ping for it.
 * const dev = await net.open({ name: 'tap0', addresses: ['10.0.0.1/24'] });
 * // dev.write(an ARP request for 10.0.0.2, from a MAC of your own) → dev.read() gives the host's reply
 * await net.close();
 * ```
 * @packageDocumentation
 */
export { backend } from './backend.js';
export {
  createMockNetwork,
  MockNetwork,
  type MockNetworkOptions,
  type MockOpenOptions,
  type MockPortInfo,
} from './network.js';
export type { MockNetworkStats } from './switch.js';
export type { MockFaults } from './faults.js';
export {
  VirtualHost,
  type PingOptions,
  type PingReply,
  type UdpSendOptions,
  type VirtualHostOptions,
  type VirtualHostStats,
} from './host.js';
export type { MockCapture, MockCaptureOptions } from './capture.js';
export { MOCK_CAPABILITIES } from './port.js';
