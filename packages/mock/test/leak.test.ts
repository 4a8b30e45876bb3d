/**
 * No leak: devices opened and closed, disconnected, or piped on one long-lived mock network are
 * all freed (measured in a child process after GC; see expectNoLeak for the bounds).
 */
import { fileURLToPath } from 'node:url';
import { itLeaksNothing } from '@tapkit/test-support';

itLeaksNothing(fileURLToPath(new URL('./fixtures/cycles.ts', import.meta.url)), 'devices', 2000, [
  'close',
  'gone',
  'traffic',
]);
