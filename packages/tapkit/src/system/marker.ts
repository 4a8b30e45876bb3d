// The marker grammar lives in @tapkit/core, shared by the backends that write it and this CLI.
export { MARKER_PREFIX, formatMarker, parseMarker, type InterfaceMarker } from '@tapkit/core';
