// Builds the native addon with node-gyp — on macOS only: utun exists nowhere else, and the
// package imports (and fails at open() with ERR_TAP_UNSUPPORTED_PLATFORM) without it.
import { spawnSync } from 'node:child_process';

if (process.platform !== 'darwin') {
  console.log(`@tapkit/darwin-utun: no native addon to build on ${process.platform} (macOS only)`);
  process.exit(0);
}
// npm runs scripts with the path of its own node-gyp in npm_config_node_gyp; else use PATH's.
const gyp = process.env.npm_config_node_gyp;
const [command, args] = gyp ? [process.execPath, [gyp, 'rebuild']] : ['node-gyp', ['rebuild']];
const result = spawnSync(command, args, { cwd: new URL('..', import.meta.url), stdio: 'inherit' });
if (result.error) console.error(`@tapkit/darwin-utun: could not run node-gyp: ${result.error.message}`);
process.exit(result.status ?? 1);
