/**
 * The pipe thread a darwin-feth pipe runs (native-common/tapkit/pipe.h with BPF framing on the
 * read side and send() on the write side), on Linux, built with -fsanitize=address,undefined:
 * a SOCK_SEQPACKET socket stands in for the BPF fd (one read, one buffer of records), a
 * SOCK_DGRAM socket for the NDRV socket. The program checks itself (native-common/test/
 * pipe_thread.cc); here its counts are checked against the contract: every frame read is written
 * or counted, truncated records and runts are skipped and counted once even when a read waits on
 * EAGAIN, frames over the destination's limit are refused (txError). Nothing here ran on a Mac.
 */
import { execFileSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { SANITIZED_PROBLEM, buildSanitized } from '@tapkit/test-support/sanitized';

interface Scenario {
  scenario: string;
  frames: number;
  bytes: number;
  interfaceDown: number;
  refused: number;
  noBuffers: number;
  truncated: number;
  runts: number;
  malformed: number;
  delivered: number;
}

describe.skipIf(SANITIZED_PROBLEM !== undefined)(
  'the native pipe thread with BPF framing (ASan + UBSan)',
  () => {
    let scenarios: Record<string, Scenario> = {};

    beforeAll(() => {
      const program = buildSanitized('pipe_thread.cc');
      const out = execFileSync(program, [], { timeout: 60_000 }).toString();
      scenarios = Object.fromEntries(
        out
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line) as Scenario)
          .map((s) => [s.scenario, s]),
      );
    }, 180_000);

    it('splits reads into records, skips and counts truncated records and runts, refuses frames over the limit', () => {
      expect(scenarios['records']).toMatchObject({
        frames: 7,
        delivered: 7,
        bytes: 60 + 1514 + 61 + 14 + 1518 + 100 + 64,
        truncated: 1,
        runts: 1,
        refused: 2, // 1515 bytes untagged, 1519 tagged, at MTU 1500
        malformed: 2, // a record claiming more than its read; 7 bytes of garbage
        interfaceDown: 0,
        noBuffers: 0,
      });
    });

    it('holds the rest of a read while the destination says EAGAIN: nothing lost, nothing counted twice', () => {
      expect(scenarios['backpressure']).toMatchObject({
        frames: 1200,
        delivered: 1200,
        truncated: 40,
        refused: 0,
      });
    });

    it('keeps one frame per read and write(2) for plain fds (linux-tap), and BPF into a plain fd', () => {
      expect(scenarios['plain']).toMatchObject({ frames: 4, bytes: 418, refused: 2 });
      expect(scenarios['bpf-to-plain']).toMatchObject({ frames: 3, bytes: 210 });
    });

    it('serves a relay’s two directions on one thread and stops while one is held', () => {
      expect(scenarios['relay-stopped']!.frames).toBeLessThan(60);
    });
  },
);
