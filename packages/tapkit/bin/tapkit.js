#!/usr/bin/env node
// The `tapkit` command. This file is committed, and dist/ is not: npm links a package's bin
// when it installs the package, which in the workspace is before the build made dist/cli.js.
const cli = new URL('../dist/cli.js', import.meta.url);
import(cli.href).catch((error) => {
  if (error?.code === 'ERR_MODULE_NOT_FOUND' && String(error.message).includes(cli.pathname)) {
    console.error(`tapkit: ${cli.pathname} is missing: build tapkit first ('npm run build')`);
    process.exitCode = 1;
    return;
  }
  throw error;
});
