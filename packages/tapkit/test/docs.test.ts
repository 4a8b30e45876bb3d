// The guides keep up with the code: every error code has its troubleshooting entry.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { TapErrorCode } from '@tapkit/core';
import { describe, expect, it } from 'vitest';

const docs = fileURLToPath(new URL('../../../docs/', import.meta.url));
const read = (file: string) => readFileSync(docs + file, 'utf8');

describe('docs', () => {
  it('troubleshooting.md explains every TapError code', () => {
    const headings = [...read('troubleshooting.md').matchAll(/^### (ERR_TAP_\w+)$/gm)].map((m) => m[1]);
    expect(headings.sort()).toEqual(Object.values(TapErrorCode).sort());
  });

  it("the index links this package's guides, and they exist", () => {
    const index = read('README.md');
    for (const guide of ['troubleshooting.md', 'macos.md', 'releasing.md']) {
      expect(index).toContain(`](${guide})`);
      expect(existsSync(docs + guide)).toBe(true);
    }
    expect(existsSync(fileURLToPath(new URL('../../../examples/README.md', import.meta.url)))).toBe(true);
  });

  it('macos.md is plain that the macOS backends have not run on a Mac', () => {
    expect(read('macos.md')).toMatch(/have not run on a Mac yet/);
  });
});
