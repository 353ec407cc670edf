import type { AttemptLaunch } from '../backend.js';
import type { ElementResources } from './scheduler.js';

/**
 * How launches become array jobs: launches that ask for the same resources (and, sharing a
 * container per element, the same image) share arrays; `pack` of them run one after another in
 * each element; arrays are cut at the cluster's size limit.
 */

export interface PlannedArray {
  resources: ElementResources;
  /** Each element's launches, in the order the element runs them. */
  elements: AttemptLaunch[][];
}

/** Added to a packed element's time: the runner's own work and the scheduler's slack. */
export const ELEMENT_TIME_MARGIN_MS = 60_000;

export function planArrays(launches: readonly AttemptLaunch[], options: { pack: number; maxArraySize: number }): PlannedArray[] {
  const groups = new Map<string, AttemptLaunch[]>();
  for (const launch of launches) {
    const key = `${launch.cpus}/${launch.memory ?? '-'}/${launch.timeMs ?? '-'}/${launch.limitsInside === true}/${sharedContainerKey(launch)}`;
    const group = groups.get(key);
    if (group) group.push(launch);
    else groups.set(key, [launch]);
  }
  const arrays: PlannedArray[] = [];
  for (const group of groups.values()) {
    const first = group[0]!;
    const elements: AttemptLaunch[][] = [];
    for (let at = 0; at < group.length; at += options.pack) elements.push(group.slice(at, at + options.pack));
    const perElement = Math.min(options.pack, group.length);
    const resources: ElementResources = {
      cpus: first.cpus,
      memory: first.memory,
      timeMs: first.timeMs === null ? null : first.timeMs * perElement + ELEMENT_TIME_MARGIN_MS,
      ...(first.limitsInside ? { limitsInside: true } : {}),
    };
    for (let at = 0; at < elements.length; at += options.maxArraySize) {
      arrays.push({ resources, elements: elements.slice(at, at + options.maxArraySize) });
    }
  }
  return arrays;
}

/** Attempts may share an element's container only when they would run in the same image with the same flags. */
function sharedContainerKey(launch: AttemptLaunch): string {
  const shared = launch.sharedContainer;
  return shared ? JSON.stringify([shared.engine, shared.run.image, shared.run.options]) : '';
}
