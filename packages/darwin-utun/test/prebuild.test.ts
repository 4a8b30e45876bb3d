/**
 * The macOS binary this package ships: one universal bundle (x86_64 + arm64), cross-built on
 * Linux by `npm run prebuilds` (scripts/prebuilds.mjs) with gyp's Release flags for macOS, our
 * sources with -Werror, every ABI fact pinned by tapkit/darwin_sdk.h's static_asserts. What is
 * checked here is what can be without a Mac: it is the right kind of file for both
 * architectures and macOS versions, node-gyp-build picks it on both kinds of Mac, and it links
 * only against what every Mac and every Node has. Running it is for the macOS workflows.
 */
import { fileURLToPath } from 'node:url';
import { describeMacosPrebuild } from '@tapkit/test-support/binaries';

describeMacosPrebuild('@tapkit/darwin-utun', fileURLToPath(new URL('../prebuilds', import.meta.url)), {
  x86_64: '10.15',
  arm64: '11.0',
});
