import { availableParallelism, totalmem } from 'node:os';
import type { Capacity } from '../backend.js';

/** This machine, unless the user hands fanout less of it (`--cpus`, `--memory`). */
export function localCapacity(limits: Partial<Pick<Capacity, 'cpus' | 'memory'>> = {}): Capacity {
  return {
    shared: true,
    cpus: limits.cpus ?? availableParallelism(),
    memory: limits.memory ?? totalmem(),
  };
}
