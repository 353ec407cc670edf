import type { Command } from 'commander';
import { jobFileJsonSchema } from '../../job/job-schema.js';

export function registerSchema(program: Command): void {
  program
    .command('schema')
    .description('print the job-file JSON Schema')
    .action(() => {
      process.stdout.write(`${JSON.stringify(jobFileJsonSchema(), null, 2)}\n`);
    });
}
