import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { Command } from 'commander';
import { templatePlaces } from '../../backends/cluster/cluster-settings.js';
import { configPlaces } from '../../job/config-files.js';
import { SchedulerCommands } from '../../backends/cluster/scheduler-commands.js';
import { findTemplate } from '../../backends/cluster/submission-script.js';
import { localCapacity } from '../../backends/local/local-capacity.js';
import { makeScheduler, readFacts } from '../../backends/open-backend.js';
import { containerEngineReports, type ContainerEngineReport } from '../../container/container-plan.js';
import { formatBytes } from '../../job/units.js';
import { describeStoreLocation } from '../../store/open-store.js';
import { storeLocation, type GlobalOptions } from '../cli-context.js';

interface BackendReport {
  name: string;
  /** A backend, or a container engine tasks can run in (on any backend). */
  kind: 'backend' | 'container engine';
  usable: boolean;
  detail: string;
  settings: string[];
  template?: string;
  missingCommands?: string[];
  /** A container engine's `--version`. */
  version?: string;
}

export function registerBackends(program: Command): void {
  program
    .command('backends')
    .description('list the backends, where each reads its settings, and check that each is usable here')
    .option('--json', 'print the reports as JSON')
    .action(async (options: GlobalOptions & { json?: boolean }) => {
      const [engines, slurm, sge] = await Promise.all([containerEngineReports(), clusterReport('slurm'), clusterReport('sge')]);
      const reports = [localReport(), slurm, sge, workersReport(storeLocation(options)), ...engines.map(engineReport)];
      if (options.json) {
        process.stdout.write(`${JSON.stringify(reports, null, 2)}\n`);
        return;
      }
      const width = Math.max(...reports.map((r) => r.name.length));
      for (const report of reports) {
        if (report === reports.find((r) => r.kind === 'container engine')) {
          process.stdout.write('container engines, for `container:` (in a job file, a config file or a profile); without `engine:`, the first one on PATH is used:\n');
        }
        process.stdout.write(`${report.name.padEnd(width)} ${report.usable ? 'usable  ' : 'unusable'} ${report.detail}\n`);
        for (const line of report.settings) process.stdout.write(`        settings: ${line}\n`);
        if (report.template) process.stdout.write(`        template: ${report.template}\n`);
      }
    });
}

function localReport(): BackendReport {
  const capacity = localCapacity();
  return {
    name: 'local',
    kind: 'backend',
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
    kind: 'backend',
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
    return { name, kind: 'backend', usable: false, detail: `not found on PATH: ${missing.join(', ')}`, settings, template: templateLine, missingCommands: missing };
  }
  try {
    const facts = await readFacts(scheduler);
    const node = facts.largestNode;
    return {
      name,
      kind: 'backend',
      usable: true,
      detail: `cluster reachable: ${facts.queues.length} ${scheduler.queueNoun}(s) (${facts.queues.join(', ')}), largest node ${node.cpus} cpus ${formatBytes(node.memory)}, arrays up to ${facts.maxArraySize}`,
      settings,
      template: templateLine,
    };
  } catch (error) {
    return {
      name,
      kind: 'backend',
      usable: false,
      detail: `commands found, but the cluster did not answer: ${(error as Error).message}`,
      settings,
      template: templateLine,
    };
  }
}

/**
 * A container engine, beside the backends: the same engine is looked for where the tasks run
 * (on a cluster, the nodes need it too); this checks it on this machine.
 */
function engineReport(report: ContainerEngineReport): BackendReport {
  return {
    name: report.engine,
    kind: 'container engine',
    usable: report.usable,
    detail: report.detail,
    // Where `container:` is read is said once, above the engines.
    settings: [],
    ...(report.version === null ? {} : { version: report.version }),
  };
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => dir && existsSync(join(dir, command)));
}
