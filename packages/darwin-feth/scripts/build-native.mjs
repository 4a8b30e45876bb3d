// Builds the native addon with node-gyp, on macOS only: elsewhere the package is TypeScript
// alone and open() reports an unsupported platform. Run by `npm run build`.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

if (process.platform !== 'darwin') {
  console.log(`@tapkit/darwin-feth: not building the native addon on ${process.platform} (macOS only)`);
  process.exit(0);
}

// npm run-script tells where its bundled node-gyp is; otherwise node-gyp must be on PATH.
const nodeGyp = process.env.npm_config_node_gyp;
const [command, args] = nodeGyp ? [process.execPath, [nodeGyp, 'rebuild']] : ['node-gyp', ['rebuild']];
const result = spawnSync(command, args, {
  cwd: fileURLToPath(new URL('..', import.meta.url)),
  stdio: 'inherit',
});
if (result.error) {
  console.error(`@tapkit/darwin-feth: could not run node-gyp: ${result.error.message}`);
  process.exit(1);
}
process.exit(result.status ?? 1);
