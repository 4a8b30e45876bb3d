import { describe, expect, it } from 'vitest';
import { formatMarker, parseMarker } from '../src/marker.js';

describe('the interface marker (ifalias)', () => {
  it('round-trips every form', () => {
    for (const marker of [
      { backend: 'linux-tap', persistent: false },
      { backend: 'linux-tap', persistent: true },
      { backend: 'linux-tap', persistent: true, pid: 4242, start: 987654 },
    ]) {
      expect(parseMarker(formatMarker(marker))).toEqual(marker);
    }
    expect(formatMarker({ backend: 'linux-tap', persistent: true, pid: 7, start: 9 })).toBe(
      'tapkit:linux-tap persistent pid=7 start=9',
    );
  });

  it('is not fooled by other aliases or malformed ones', () => {
    expect(parseMarker('')).toBeUndefined();
    expect(parseMarker('uplink to the lab switch')).toBeUndefined();
    expect(parseMarker('tapkit')).toBeUndefined();
    expect(parseMarker('tapkit:')).toBeUndefined();
    expect(parseMarker('tapkit:Linux Tap')).toBeUndefined();
    expect(parseMarker('tapkit:linux-tap pid=0 start=1')).toBeUndefined();
    // Unknown or malformed tokens are ignored, not trusted: no owner is read from them.
    expect(parseMarker('tapkit:linux-tap persistent pid=12x future=1')).toEqual({
      backend: 'linux-tap',
      persistent: true,
    });
  });
});
