import { z } from 'zod';

/**
 * The job file as users write it. This schema is the contract: the loader validates against it
 * and `fanout schema` publishes it as JSON Schema (checked in as schema/job.schema.json).
 */

const scalar = z.union([z.string(), z.number(), z.boolean()]);

const memory = z
  .string()
  .describe('Memory with a unit: 512MB, 4GB (powers of 1000), 4GiB or 4G (powers of 1024).');
const duration = z.string().describe('A duration with a unit: 90s, 30m, 2h, 1d, 1h30m, or HH:MM:SS.');

const chunksSource = z
  .strictObject({
    file: z.string().describe('The file to split, relative to the job file.'),
    format: z
      .enum(['fasta', 'fastq', 'lines'])
      .optional()
      .describe('Record format; default from the extension (.fa/.fasta/.fna/.faa, .fq/.fastq), else lines.'),
    count: z.int().min(1).optional().describe('Split into at most this many chunks of about equal size.'),
    size: memory.optional().describe('Split into chunks of at most this size (a record is never split).'),
  })
  .describe('Split one big file on record boundaries; one task per chunk ({{ chunk }}).');

export const taskSourceKeys = ['each', 'matrix', 'files', 'folders', 'table', 'chunks'] as const;

const tasks = z
  .strictObject({
    each: z
      .array(z.union([scalar, z.record(z.string(), scalar)]))
      .min(1)
      .optional()
      .describe('One task per value ({{ item }}) or per map (each key a variable).'),
    matrix: z
      .record(z.string(), z.array(scalar).min(1))
      .optional()
      .describe('A map of lists: one task per combination.'),
    files: z.string().optional().describe('A glob: one task per matching file ({{ file }}, {{ name }} = stem).'),
    folders: z.string().optional().describe('A parent folder: one task per child folder ({{ folder }}, {{ name }}).'),
    table: z.string().optional().describe('A CSV or TSV file with a header: one task per row, columns become variables.'),
    chunks: chunksSource.optional(),
  })
  .describe('Exactly one source of tasks.');

const failureReason = z.enum(['exit', 'oom', 'timeout', 'lost']);

export const jobFileSchema = z
  .strictObject({
    $schema: z.string().optional().describe('Editors may point this at the published JSON Schema.'),
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/)
      .optional()
      .describe('Job name (default: the file name without extension). Letters, digits, ".", "_", "-".'),
    command: z.string().min(1).optional().describe('Shell command template run once per task.'),
    script: z.string().min(1).optional().describe('Multi-line shell script template run once per task.'),
    tasks,
    vars: z.record(z.string(), scalar).optional().describe('Shared values; `--set key=value` overrides them.'),
    resources: z
      .strictObject({
        cpus: z.int().min(1).optional().describe('Cores per task (default 1).'),
        memory: memory.optional().describe('Memory per task; an attempt past it is stopped and recorded as oom.'),
        time: duration.optional().describe('Time per attempt; an attempt past it is stopped and recorded as timeout.'),
      })
      .optional(),
    retry: z
      .strictObject({
        max: z.int().min(0).optional().describe('Retries after the first attempt (default 0).'),
        on: z.array(failureReason).min(1).optional().describe('Failure reasons that are retried (default: all).'),
        escalate: z
          .strictObject({
            memory: z.number().min(1).optional().describe('Multiply memory by this after an oom.'),
            time: z.number().min(1).optional().describe('Multiply time by this after a timeout.'),
          })
          .optional(),
      })
      .optional(),
    concurrency: z.int().min(1).optional().describe('The most tasks running at once.'),
    outdir: z.string().optional().describe('Where task outputs are kept (default: fanout-out/<name> in the current folder).'),
    gather: z.string().min(1).optional().describe('Command run once every task succeeded ({{ outputs }}, {{ manifest }}).'),
  })
  .describe('A fanout job file.');

export type JobFile = z.infer<typeof jobFileSchema>;

/** The JSON Schema that `fanout schema` prints and the package publishes. */
export function jobFileJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(jobFileSchema),
    $id: 'https://github.com/fanout/fanout/schema/job.schema.json',
    title: 'fanout job file',
  };
}
