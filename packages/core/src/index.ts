/**
 * `@tapkit/core`: the TapDevice contract, backend selection, the shared device engine, frame
 * codecs and a pcap writer. No native code and no dependency on any backend.
 *
 * @packageDocumentation
 */
export * from './errors.js';
export type * from './types.js';
export { VNET_HEADER_LENGTH } from './types.js';
export { abortError, createTapDevice, type EngineOptions } from './engine.js';
export {
  resolveOpenOptions,
  checkInterfaceName,
  isNameTemplate,
  checkMtu,
  checkDeviceMac,
  describeValue,
  parseCidr,
  MIN_MTU,
  MAX_MTU,
  DEFAULT_MTU,
  DEFAULT_RX_QUEUE_FRAMES,
  type MtuLimits,
} from './options.js';
export {
  openTap,
  definePortBackend,
  checkOptionNames,
  loadBackend,
  backendCandidates,
  unavailable,
  KNOWN_BACKENDS,
  PLATFORM_BACKENDS,
  type PortBackendSpec,
  type BackendLoader,
  type SelectionContext,
} from './backend.js';
export * from './codec/index.js';
export * from './pcap.js';
export { MARKER_PREFIX, formatMarker, parseMarker, type InterfaceMarker } from './marker.js';
export { loadNativeAddon, RECEIVE_SLAB_BYTES, type NativeAddonSpec } from './native.js';
export {
  DARWIN_ROUTE,
  darwinSaSize,
  decodeDarwinRouteMessages,
  encodeDarwinIfInfo,
  encodeDarwinAddressMessage,
  DarwinInterfaceFollower,
  SimulatedRouteWatcher,
  type DarwinRouteWatcher,
  type DarwinRouteWatcherOptions,
  type DarwinFollowResult,
  type DarwinRouteMessage,
  type DarwinLinkMessage,
  type DarwinAddressMessage,
  type DarwinRouteDecoded,
} from './darwin-route.js';
