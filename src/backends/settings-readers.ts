import type { BackendName } from '../job/job-schema.js';

/** Which backends read which settings blocks of a job (or of `Fanout.open`), to refuse settings the chosen backend would ignore. */
export const SETTINGS_READERS: Record<'cluster' | 'slurm' | 'sge', readonly BackendName[]> = { cluster: ['slurm', 'sge'], slurm: ['slurm'], sge: ['sge'] };
