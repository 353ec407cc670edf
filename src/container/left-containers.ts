import { execFile } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { containerEngines, type ContainerEngineName } from '../job/job-schema.js';
import { containerEngine } from './container-engines.js';

/**
 * An attempt's container id, kept in its folder while its wrapper waits for it. The engine is in
 * the file's name, so that whoever finds the file after the wrapper died knows whom to ask.
 */
export function cidFileName(engine: ContainerEngineName): string {
  return `.fanout.${engine}.cid`;
}

/** How long removing one container may take (podman stops it first, for up to its stop time). */
const REMOVE_TIMEOUT_MS = 60_000;

/**
 * Remove the container of an attempt whose wrapper is gone without seeing it end (its id file is
 * still there): the attempt is being given up as lost, and a container the engine runs apart
 * from any process of ours would otherwise run on. Fire and forget; an id already gone is fine.
 */
export function removeLeftContainer(attemptDir: string): void {
  for (const name of containerEngines) {
    if (!containerEngine(name).detached) continue;
    const file = join(attemptDir, cidFileName(name));
    let id: string;
    try {
      id = readFileSync(file, 'utf8').trim();
    } catch {
      continue;
    }
    if (!/^[0-9a-f]{12,64}$/.test(id)) continue;
    execFile(name, ['rm', '--force', id], { timeout: REMOVE_TIMEOUT_MS }, () => rmSync(file, { force: true }));
  }
}
