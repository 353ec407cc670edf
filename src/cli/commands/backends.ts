import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { Command } from 'commander';
import { templatePlaces } from '../../backends/cluster/cluster-settings.js';
import { configPlaces } from '../../job/config-files.js';
import { SchedulerCommands } from '../../backends/cluster/scheduler-commands.js';
import { findTemplate } from '../../backends/cluster/submission-script.js';
import { localCapacity } from '../../backends/local/local-capacity.js';
import { makeScheduler, readFacts } from '../../backends/open-backend.js';
import { formatBytes } from '../../job/units.js';
import { describeStoreLocation } from '../../store/open-store.js';
import { storeLocation, type GlobalOptions } from '../cli-context.js';

interface BackendReport {
  name: string;
  usable: boolean;
  detail: string;
  settings: string[];
  template?: string;
  missingCommands?: string[];
}

export function registerBackends(program: Command): void {
  program
    .command('backends')
    .description('list the backends, where each reads its settings, and check that each is usable here')
    .option('--json', 'print the reports as JSON')
    .action(async (options: GlobalOptions & { json?: boolean }) => {
      const reports = [localReport(), await clusterReport('slurm'), await clusterReport('sge'), workersReport(storeLocation(options))];
      if (options.json) {
        process.stdout.write(`${JSON.stringify(reports, null, 2)}\n`);
        return;
      }
      for (const report of reports) {
        process.stdout.write(`${report.name.padEnd(7)} ${report.usable ? 'usable  ' : 'unusable'} ${report.detail}\n`);
        for (const line of report.settings) process.stdout.write(`        settings: ${line}\n`);
        if (report.template) process.stdout.write(`        template: ${report.template}\n`);
      }
    });
}

function localReport(): BackendReport {
  const capacity = localCapacity();
  return {
    name: 'local',
    usable: true,
    detail: `processes on this machine: ${capacity.cpus} cpus, ${formatBytes(capacity.memory)} (--cpus, --memory, FANOUT_CPUS, FANOUT_MEMORY)`,
    settings: ['command-line flags and FANOUT_* variables'],
  };
}

/**
 * Pull workers need no command of their own, only a store they all reach: with the default
 * SQLite store that is workers on this machine; other machines need a PostgreSQL store.
 */
function workersReport(store: string | undefined): BackendReport {
  const start = 'start them with `fanout worker` or `fanout workers start`';
  return {
    name: 'workers',
    usable: true,
    detail:
      store === undefined
        ? `tasks wait in this machine's SQLite store, for workers on this machine; for workers elsewhere pass --store postgres://... (or FANOUT_STORE); ${start}`
        : `tasks wait in the store ${describeStoreLocation(store)}, for workers on any machine that reaches it; ${start}`,
    settings: [
      'the store: --store or FANOUT_STORE',
      's3:// workdir and outdir: the AWS environment and profile chain (AWS_ENDPOINT_URL_S3, AWS_REGION, AWS_PROFILE, ...)',
    ],
  };
}

async function clusterReport(name: 'slurm' | 'sge'): Promise<BackendReport> {
  const commands = new SchedulerCommands();
  const scheduler = makeScheduler(name, { commands, slurm: {}, sge: {} });
  const settings = [
    ...configPlaces().map((place) => `${place.path} (${place.role} config, \`${name}:\` and \`cluster:\`)${existsSync(place.path) ? '' : ' — not present'}`),
    `the job file's \`${name}:\` and \`cluster:\` sections, and \`profile:\``,
  ];
  const template = findTemplate(name, templatePlaces());
  const templateLine = `${template.origin}${template.origin === 'built-in' ? ` (override with ${name}.sh in ${templatePlaces().join(' or ')})` : ''}`;
  const missing = scheduler.commands.filter((command) => !onPath(command));
  if (missing.length > 0) {
    return { name, usable: false, detail: `not found on PATH: ${missing.join(', ')}`, settings, template: templateLine, missingCommands: missing };
  }
  try {
    const facts = await readFacts(scheduler);
    const node = facts.largestNode;
    return {
      name,
      usable: true,
      detail: `cluster reachable: ${facts.queues.length} ${scheduler.queueNoun}(s) (${facts.queues.join(', ')}), largest node ${node.cpus} cpus ${formatBytes(node.memory)}, arrays up to ${facts.maxArraySize}`,
      settings,
      template: templateLine,
    };
  } catch (error) {
    return { name, usable: false, detail: `commands found, but the cluster did not answer: ${(error as Error).message}`, settings, template: templateLine };
  }
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => dir && existsSync(join(dir, command)));
}
