import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { finished, isRunning, Sandbox, taskPids, waitFor } from './harness.js';
import { cancelElement, commandCounts, describeOn, queuedElements, runJobIds, type BackendUnderTest } from './schedulers.js';

/**
 * One suite, every backend: the same job files run locally, on a real single-node SLURM and on
 * a real single-node Grid Engine, and must behave the same. Cluster runs poll fast here
 * (FANOUT_POLL_MS) so the suite does not wait on the default 5 s rhythm.
 */

const SLOW = 240_000;

/**
 * Allocates ~270 MB across four processes, held long enough for any sampler to see it, and fails
 * if any of them was killed (a cgroup OOM killer kills one process, not the task).
 */
export const HOG =
  `pids=; for i in 1 2 3 4; do python3 -c 'import time; b = bytearray(60 * 2**20); b[::4096] = b"x" * len(b[::4096]); time.sleep(4)' & pids="$pids $!"; done; ` +
  'for p in $pids; do wait $p || exit $?; done';

/** Declare the conformance suite for one backend (each backend's file calls this, so they run in parallel). */
export function conformance(backend: BackendUnderTest): void {
  describeOn(backend, `conformance on ${backend}`, () => {
    let box: Sandbox;
    beforeEach(() => (box = new Sandbox()));
    afterEach(() => box?.cleanup());

    const env = { FANOUT_POLL_MS: '300', FANOUT_BACKEND: backend };
    const run = (args: string[]) => box.run(args, { env, timeoutMs: SLOW });
    const start = (args: string[]) => box.start(args, { env });
    const job = (lines: string[]) => box.write('job.yaml', `${lines.join('\n')}\n`);
    const tasks = () =>
      box.query<{ idx: number; name: string; state: string; attempts: number; reason: string; exit_code: number | null; memory: number | null }>(
        'SELECT idx, name, state, attempts, reason, exit_code, memory FROM tasks ORDER BY idx',
      );
    const attempts = () => box.query<{ idx: number; attempt: number; reason: string }>('SELECT idx, attempt, reason FROM attempts WHERE idx >= 0 ORDER BY idx, attempt');

    it(
      'runs tasks, commits their outputs, keeps their logs and gathers',
      async () => {
        job([
          'command: echo "hello {{ item }}"; echo {{ item }} > {{ out }}/v',
          'tasks:',
          '  each: [a, b, c]',
          'gather: for d in {{ outputs }}; do cat "$d/v"; done > all.txt',
        ]);
        const result = await run(['run', 'job.yaml', '--json']);
        expect(result.code, result.stderr).toBe(0);
        expect(JSON.parse(result.stdout)).toMatchObject({ state: 'succeeded', counts: { succeeded: 3 } });
        for (const name of ['a', 'b', 'c']) expect(readFileSync(box.path('fanout-out/job', name, 'v'), 'utf8')).toBe(`${name}\n`);
        expect(readFileSync(box.path('fanout-out/job/all.txt'), 'utf8').split('\n').filter(Boolean).sort()).toEqual(['a', 'b', 'c']);
        const logs = await run(['logs', '1', 'b']);
        expect(logs.stdout).toContain('hello b');
        if (backend !== 'local') expect(commandCounts(box)).toMatchObject({ [backend === 'slurm' ? 'sbatch' : 'qsub']: 2 });
      },
      SLOW,
    );

    it(
      'records an exit failure with its code',
      async () => {
        job(['command: echo failing >&2; exit 3', 'tasks:', '  each: [x]']);
        const result = await run(['run', 'job.yaml']);
        expect(result.code).toBe(1);
        expect(tasks()[0]).toMatchObject({ state: 'failed', reason: 'exit', exit_code: 3 });
        expect((await run(['logs', '1', 'x'])).stdout + (await run(['logs', '1', 'x', '--stderr'])).stdout).toContain('failing');
      },
      SLOW,
    );

    it(
      'stops a task past its memory as oom, and gives the retry more memory',
      async () => {
        job([
          `command: "${HOG.replace(/"/g, '\\"')}"`,
          'tasks:',
          '  each: [hog]',
          'resources:',
          '  memory: 128MiB',
          'retry:',
          '  max: 1',
          '  on: [oom]',
          '  escalate:',
          '    memory: 3',
        ]);
        const result = await run(['run', 'job.yaml']);
        expect(attempts()).toMatchObject([
          { attempt: 1, reason: 'oom' },
          { attempt: 2, reason: 'ok' },
        ]);
        expect(result.code, result.stderr).toBe(0);
        expect(tasks()[0]).toMatchObject({ state: 'succeeded', memory: 3 * 128 * 2 ** 20 });
      },
      SLOW,
    );

    it(
      'records a task whose own allocation fails at its memory limit as oom, on disk as in the store, and gives the retry more memory',
      async () => {
        // Under Grid Engine's h_vmem the allocation fails (MemoryError, exit 1) instead of the
        // task being killed; elsewhere the limit kills it. The memory is held a few seconds
        // before exiting because Grid Engine samples maxvmem.
        const program =
          'import sys, time\n' +
          'chunks = []\n' +
          'try:\n' +
          '    for _ in range(40): chunks.append(bytearray(8 * 2**20))\n' +
          'except MemoryError:\n' +
          '    print("MemoryError after", 8 * len(chunks), "MiB", file=sys.stderr); time.sleep(4); sys.exit(1)\n';
        box.write('alloc.py', program);
        job([
          `command: python3 ${box.path('alloc.py')}`,
          'tasks:',
          '  each: [alloc]',
          'resources:',
          '  memory: 200MiB',
          'retry:',
          '  max: 1',
          '  on: [oom]',
          '  escalate:',
          '    memory: 3',
        ]);
        const result = await run(['run', 'job.yaml']);
        expect(attempts()).toMatchObject([
          { attempt: 1, reason: 'oom' },
          { attempt: 2, reason: 'ok' },
        ]);
        expect(result.code, result.stderr).toBe(0);
        const [first] = box.query<{ dir: string }>('SELECT dir FROM attempts WHERE idx = 0 AND attempt = 1');
        expect(JSON.parse(readFileSync(`${first!.dir}/.fanout.result.json`, 'utf8'))).toMatchObject({ reason: 'oom' });
      },
      SLOW,
    );

    it(
      'measures a task’s peak memory and shows it',
      async () => {
        job([`command: python3 -c 'import time; b = bytearray(100 * 2**20); b[::4096] = b"x" * len(b[::4096]); time.sleep(2)'`, 'tasks:', '  each: [m]']);
        const result = await run(['run', 'job.yaml']);
        expect(result.code, result.stderr).toBe(0);
        const [task] = box.query<{ peak_memory: number | null }>('SELECT peak_memory FROM tasks WHERE idx = 0');
        expect(task!.peak_memory).toBeGreaterThanOrEqual(100 * 2 ** 20);
        expect(task!.peak_memory).toBeLessThan(2 ** 30);
        const [attempt] = box.query<{ dir: string }>('SELECT dir FROM attempts WHERE idx = 0');
        expect(JSON.parse(readFileSync(`${attempt!.dir}/.fanout.result.json`, 'utf8')).peakMemory).toBe(task!.peak_memory);
        const listed = await run(['tasks', '1', '--json']);
        expect(JSON.parse(listed.stdout)).toMatchObject([{ peakMemory: task!.peak_memory }]);
      },
      SLOW,
    );

    it(
      'stops a task past its time as timeout',
      async () => {
        job(['command: sleep 60', 'tasks:', '  each: [slow]', 'resources:', '  time: 3s']);
        const started = Date.now();
        const result = await run(['run', 'job.yaml', '--grace', '1s']);
        expect(result.code).toBe(1);
        expect(tasks()[0]).toMatchObject({ state: 'failed', reason: 'timeout' });
        expect(Date.now() - started).toBeLessThan(50_000);
      },
      SLOW,
    );

    it(
      'retries a task killed from outside the run',
      async () => {
        job(['command: echo $$ > pid; if [ "$FANOUT_ATTEMPT" = 1 ]; then sleep 60; fi', 'tasks:', '  each: [victim]', 'retry:', '  max: 1', '  on: [exit, lost]']);
        const child = start(['run', 'job.yaml']);
        const [pid] = await taskPids(box);
        if (backend === 'local') process.kill(pid!, 'SIGKILL');
        else cancelElement(backend, runJobIds(box)[0]!, backend === 'slurm' ? 0 : 1);
        const result = await finished(child, SLOW);
        expect(result.code, result.stderr).toBe(0);
        expect(attempts().map((a) => a.attempt)).toEqual([1, 2]);
        expect(['lost', 'exit']).toContain(attempts()[0]!.reason);
      },
      SLOW,
    );

    it(
      'resumes after SIGKILL of the coordinator: finished jobs are adopted, not resubmitted',
      async () => {
        job([`command: echo $$ > pid; sleep {{ item }}; echo {{ item }} >> ${box.path('ran.log')}; echo done > {{ out }}/v`, 'tasks:', '  each: [1, 2, 6, 7]']);
        const first = start(['run', 'job.yaml']);
        await taskPids(box);
        await waitFor(() => box.query<{ n: number }>(`SELECT COUNT(*) AS n FROM attempts WHERE idx >= 0`)[0]!.n === 4, 60_000, 'all four launched');
        const submissionsBefore = commandCounts(box);
        first.kill('SIGKILL');
        await finished(first);
        // Let the short tasks finish while no coordinator watches.
        await waitFor(() => existsSync(box.path('ran.log')) && readFileSync(box.path('ran.log'), 'utf8').includes('2'), 60_000, 'short tasks to finish');
        const second = await run(['run', 'job.yaml', '--json']);
        expect(second.code, second.stderr).toBe(0);
        expect(JSON.parse(second.stdout)).toMatchObject({ run: 1, state: 'succeeded', counts: { succeeded: 4 } });
        expect(readFileSync(box.path('ran.log'), 'utf8').trim().split('\n').sort()).toEqual(['1', '2', '6', '7']);
        expect(attempts().every((a) => a.attempt === 1)).toBe(true);
        if (backend !== 'local') {
          const submit = backend === 'slurm' ? 'sbatch' : 'qsub';
          expect(commandCounts(box)[submit]).toBe(submissionsBefore[submit]);
        }
      },
      SLOW,
    );

    for (const gatherOn of ['backend', 'local'] as const) {
      it(
        `adopts a gather (gather_on: ${gatherOn}) cut off by a SIGKILL of the coordinator: one gather process, never a second`,
        async () => {
          const log = box.path('gather.log');
          job([
            'command: echo {{ item }} > {{ out }}/v',
            'tasks:',
            '  each: [a, b]',
            // Which scheduler job (if any) it runs in, and each step, with its pid: a second gather would show.
            `gather: echo "start $$ \${SLURM_JOB_ID:-none} \${JOB_ID:-none}" >> ${log}; for i in 1 2 3 4 5 6; do sleep 0.5; echo "step $$ $i" >> ${log}; done; cat */v > all.txt`,
            `gather_on: ${gatherOn}`,
          ]);
          const lines = () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []);
          const first = start(['run', 'job.yaml']);
          await waitFor(() => lines().length >= 1, SLOW / 2, 'the gather to start');
          first.kill('SIGKILL');
          await finished(first);
          const second = await run(['run', 'job.yaml', '--json']);
          expect(second.code, second.stderr).toBe(0);
          expect(JSON.parse(second.stdout)).toMatchObject({ state: 'succeeded', gather: 'succeeded' });
          const starts = lines().filter((line) => line.startsWith('start'));
          expect(starts, lines().join('\n')).toHaveLength(1);
          const [, pid, slurmJob, sgeJob] = starts[0]!.split(' ');
          expect(lines().filter((line) => line.startsWith('step'))).toEqual([1, 2, 3, 4, 5, 6].map((i) => `step ${pid} ${i}`));
          expect(box.query(`SELECT attempt, reason FROM gathers`)).toEqual([{ attempt: 1, reason: 'ok' }]);
          expect(readFileSync(box.path('fanout-out/job/all.txt'), 'utf8')).toBe('a\nb\n');
          if (backend !== 'local') {
            // Local: not through the queue (one submission, the tasks'); backend: the gather's own, submitted once.
            const here = gatherOn === 'local';
            expect(slurmJob === 'none' && sgeJob === 'none').toBe(here);
            expect(commandCounts(box)[backend === 'slurm' ? 'sbatch' : 'qsub']).toBe(here ? 1 : 2);
          }
        },
        SLOW,
      );
    }

    it(
      'cancels a run from another shell and leaves nothing queued',
      async () => {
        job(['command: echo $$ > pid; sleep 60', 'tasks:', '  each: [p, q, r, s]']);
        const child = start(['run', 'job.yaml']);
        await waitFor(() => box.query<{ n: number }>(`SELECT COUNT(*) AS n FROM attempts WHERE idx >= 0`)[0]!.n >= 2, 60_000, 'attempts launched');
        if (backend === 'local') await taskPids(box);
        else await waitFor(() => runJobIds(box).length > 0, 30_000, 'the array submitted');
        const cancel = await run(['cancel']);
        expect(cancel.code, cancel.stderr).toBe(0);
        const result = await finished(child, SLOW);
        expect(result.code).toBe(130);
        expect(tasks().every((task) => task.state === 'cancelled')).toBe(true);
        if (backend === 'local') {
          const pids = readdirSync(box.path('.fanout/work/1')).filter((d) => existsSync(box.path('.fanout/work/1', d, 'pid')));
          for (const dir of pids) expect(isRunning(Number(readFileSync(box.path('.fanout/work/1', dir, 'pid'), 'utf8')))).toBe(false);
        } else {
          await waitFor(() => queuedElements(backend, runJobIds(box)).length === 0, 60_000, 'the jobs to leave the queue');
        }
      },
      SLOW,
    );

    it(
      'keeps attempt folders under --workdir',
      async () => {
        job(['command: echo "in $PWD"', 'tasks:', '  each: [w]']);
        const result = await run(['run', 'job.yaml', '--workdir', box.path('shared scratch')]);
        expect(result.code, result.stderr).toBe(0);
        const [attempt] = box.query<{ dir: string }>('SELECT dir FROM attempts WHERE idx = 0');
        expect(attempt!.dir.startsWith(box.path('shared scratch') + '/')).toBe(true);
        expect((await run(['logs', '1', 'w'])).stdout).toBe(`in ${attempt!.dir}\n`);
      },
      SLOW,
    );

    if (backend !== 'local') {
      const submit = backend === 'slurm' ? 'sbatch' : 'qsub';

      it(
        'finds an array whose job id was never written (the coordinator died just after submitting) by its name, not submitting it again',
        async () => {
          // The tasks wait for the test's word, so they are still running when the second coordinator adopts them.
          job([`command: while [ ! -f ${box.path('go')} ]; do sleep 0.2; done; echo {{ item }} >> ${box.path('ran.log')}`, 'tasks:', '  each: [1, 2]']);
          const first = start(['run', 'job.yaml']);
          await waitFor(() => runJobIds(box).length === 1, 60_000, 'the array submitted');
          first.kill('SIGKILL');
          await finished(first);
          // What a coordinator killed between the submission returning and the id being written leaves.
          rmSync(box.path('.fanout/work/1/arrays/1/job'));
          const submissionsBefore = commandCounts(box)[submit];
          const pollsBefore = commandCounts(box)[backend === 'slurm' ? 'squeue' : 'qstat'] ?? 0;
          const resumed = start(['run', 'job.yaml', '--json']);
          await waitFor(() => (commandCounts(box)[backend === 'slurm' ? 'squeue' : 'qstat'] ?? 0) > pollsBefore + 1, 60_000, 'the second coordinator to poll');
          box.write('go', '');
          const second = await finished(resumed, SLOW);
          expect(second.code, second.stderr).toBe(0);
          expect(JSON.parse(second.stdout)).toMatchObject({ run: 1, state: 'succeeded', counts: { succeeded: 2 } });
          expect(commandCounts(box)[submit]).toBe(submissionsBefore);
          expect(readFileSync(box.path('ran.log'), 'utf8').trim().split('\n').sort()).toEqual(['1', '2']);
          expect(attempts().every((a) => a.attempt === 1)).toBe(true);
        },
        SLOW,
      );

      it(
        'reads no result records of an element the scheduler still has queued',
        async () => {
          // Submitted held, so the element stays queued until the test releases it.
          job(['command: echo ran > {{ out }}/v', 'tasks:', '  each: [held]', 'slurm:', '  extra: [--hold]', 'sge:', '  extra: [-h]']);
          const child = start(['run', 'job.yaml']);
          const [jobId] = await waitFor(() => runJobIds(box).length === 1 && runJobIds(box), 60_000, 'the array submitted');
          try {
            const [attempt] = box.query<{ dir: string }>('SELECT dir FROM attempts WHERE idx = 0');
            const id = Number(/^id=(\d+)/m.exec(readFileSync(`${attempt!.dir}/.fanout.commit`, 'utf8'))![1]);
            // A record where the queued element's attempt will run: looking at it now would be a metadata read too many.
            const now = Date.now();
            const record = { id, reason: 'ok', exitCode: 0, signal: null, startedAt: now, endedAt: now, peakMemory: null, cpuMs: 0, host: 'planted', pid: null };
            writeFileSync(`${attempt!.dir}/.fanout.result.json`, JSON.stringify(record));
            const poll = backend === 'slurm' ? 'squeue' : 'qstat';
            const pollsBefore = commandCounts(box)[poll] ?? 0;
            await waitFor(() => (commandCounts(box)[poll] ?? 0) >= pollsBefore + 3, 60_000, 'three polls of the queue');
            expect(tasks()[0]).toMatchObject({ state: 'running' });
            execFileSync(backend === 'slurm' ? 'scontrol' : 'qrls', backend === 'slurm' ? ['release', jobId!] : [jobId!], { stdio: 'pipe' });
            // Released, the element runs, finds its attempt's record and keeps it; once it left the queue, it is read.
            const result = await finished(child, SLOW);
            expect(result.code, result.stderr).toBe(0);
            expect(box.query<{ host: string }>('SELECT host FROM attempts WHERE idx = 0')).toEqual([{ host: 'planted' }]);
          } finally {
            try {
              execFileSync(backend === 'slurm' ? 'scancel' : 'qdel', [jobId!], { stdio: 'pipe' });
            } catch {
              // Already gone.
            }
          }
        },
        SLOW,
      );

      it(
        'splits arrays at the array size limit',
        async () => {
          job(['command: echo {{ item }} > {{ out }}/v', 'tasks:', '  each: [1, 2, 3, 4, 5]', 'cluster:', '  maxArraySize: 2']);
          const result = await run(['run', 'job.yaml']);
          expect(result.code, result.stderr).toBe(0);
          expect(runJobIds(box)).toHaveLength(3);
          const lines = (n: number) =>
            readFileSync(box.path('.fanout/work/1/arrays', String(n), 'elements'), 'utf8')
              .trim()
              .split('\n').length;
          expect([lines(1), lines(2), lines(3)]).toEqual([2, 2, 1]);
        },
        SLOW,
      );

      it(
        'packs several tasks into one array element',
        async () => {
          job(['command: echo {{ item }} > {{ out }}/v; echo ran {{ item }}', 'tasks:', '  each: [1, 2, 3, 4, 5, 6, 7]', 'cluster:', '  pack: 3']);
          const result = await run(['run', 'job.yaml']);
          expect(result.code, result.stderr).toBe(0);
          const elements = readFileSync(box.path('.fanout/work/1/arrays/1/elements'), 'utf8').trim().split('\n');
          expect(elements.map((line) => line.split(' ').length)).toEqual([3, 3, 1]);
          expect(tasks().every((task) => task.state === 'succeeded')).toBe(true);
          expect((await run(['logs', '1', '5'])).stdout).toContain('ran 5');
        },
        SLOW,
      );
    }

    if (backend === 'sge') {
      it(
        'fails an element Grid Engine holds in its error state (Eqw) as infra, with its reason, and deletes it',
        async () => {
          // Grid Engine cannot chdir there, so it puts the element in Eqw, where it would wait forever.
          job(['command: echo never', 'tasks:', '  each: [e]', 'sge:', '  extra: [-wd /nonexistent-fanout-folder]']);
          const result = await run(['run', 'job.yaml']);
          expect(result.code).toBe(1);
          expect(tasks()[0]).toMatchObject({ state: 'failed', reason: 'infra' });
          const [attempt] = box.query<{ error: string }>('SELECT error FROM attempts WHERE idx = 0 ORDER BY attempt DESC');
          expect(attempt!.error).toMatch(/error state.*nonexistent-fanout-folder/);
          await waitFor(() => queuedElements(backend, runJobIds(box)).length === 0, 60_000, 'the job to leave the queue');
        },
        SLOW,
      );
    }
  });
}
