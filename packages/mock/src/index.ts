/**
 * `@tapkit/mock`: an in-memory tapkit backend — a learning switch with devices and virtual
 * hosts on its ports, seeded fault injection and pcap capture. No privileges, no native code:
 * for tests and CI.
 *
 * @example
 * ```ts
 * import { createMockNetwork } from '@tapkit/mock';
 * await using net = createMockNetwork({ seed: 42 });
 * const host = net.addHost({ ipv4: '10.0.0.2/24' });
 * await using dev = await net.open({ name: 'tap0' });
 * // dev.write(an ARP request for 10.0.0.2) → dev.read() gives the host's reply
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
