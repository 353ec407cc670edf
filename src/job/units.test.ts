import { describe, expect, it } from 'vitest';
import { formatBytes, formatDuration, parseDuration, parseMemory } from './units.js';

describe('units', () => {
  it('reads memory: decimal units, binary units and scheduler-style letters', () => {
    expect(parseMemory('512MB')).toBe(512e6);
    expect(parseMemory('4GB')).toBe(4e9);
    expect(parseMemory('1.5 GiB')).toBe(1.5 * 1024 ** 3);
    expect(parseMemory('4G')).toBe(4 * 1024 ** 3);
    expect(parseMemory('100')).toBeNull();
    expect(parseMemory('4 parsecs')).toBeNull();
    expect(parseMemory('0MB')).toBeNull();
  });

  it('reads durations: units, combinations and clock notation', () => {
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('2h')).toBe(7_200_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('01:30:00')).toBe(5_400_000);
    expect(parseDuration('1-00:00:00')).toBe(86_400_000);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('90')).toBeNull();
    expect(parseDuration('soon')).toBeNull();
  });

  it('formats for people', () => {
    expect(formatBytes(1.5e9)).toBe('1.5 GB');
    expect(formatBytes(300)).toBe('300 B');
    expect(formatDuration(5_400_000)).toBe('1h30m');
    expect(formatDuration(1500)).toBe('1.5s');
  });
});
