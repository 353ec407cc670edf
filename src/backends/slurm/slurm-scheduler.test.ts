import { describe, expect, it } from 'vitest';
import { parseSacct, parseScontrolJobs, parseSinfoNodes, parseSlurmDuration, parseSlurmSize, parseSqueue, slurmEnd } from './slurm-scheduler.js';

// Outputs as SLURM 22.05 printed them on the single-node cluster of scripts/hpc/slurm.sh.

describe('SLURM output parsing', () => {
  it('reads nodes, partitions and the default partition from sinfo', () => {
    expect(parseSinfoNodes('localhost|debug*|2|24105\nbig01|bigmem|64|1031000\n')).toEqual([
      { name: 'localhost', partition: 'debug', isDefault: true, cpus: 2, memoryMb: 24105 },
      { name: 'big01', partition: 'bigmem', isDefault: false, cpus: 64, memoryMb: 1031000 },
    ]);
  });

  it('reads one element per line from squeue -r, only for the run’s own jobs', () => {
    const text = '22_2|PENDING\n22_0|RUNNING\n22_1|COMPLETING\n99_0|RUNNING\n';
    expect([...parseSqueue(text, new Set(['22']))]).toEqual([
      ['22.2', 'queued'],
      ['22.0', 'running'],
      ['22.1', 'running'],
    ]);
  });

  it('maps job states to fanout’s failure classes', () => {
    expect(slurmEnd('OUT_OF_MEMORY', '0:125')).toEqual({ state: 'oom' });
    expect(slurmEnd('TIMEOUT', '0:15')).toEqual({ state: 'timeout' });
    expect(slurmEnd('NODE_FAIL', '0:0')).toEqual({ state: 'node-failure', detail: 'NODE_FAIL' });
    expect(slurmEnd('PREEMPTED', '0:0')).toMatchObject({ state: 'node-failure' });
    expect(slurmEnd('BOOT_FAIL', '0:0')).toMatchObject({ state: 'node-failure' });
    expect(slurmEnd('CANCELLED by 0', '0:15')).toEqual({ state: 'cancelled' });
    expect(slurmEnd('COMPLETED', '0:0')).toEqual({ state: 'completed', exitCode: 0 });
    expect(slurmEnd('FAILED', '3:0')).toEqual({ state: 'failed', exitCode: 3 });
    expect(slurmEnd('FAILED', '0:9')).toEqual({ state: 'failed', exitCode: 137 });
    expect(slurmEnd('RUNNING', '0:0')).toEqual({ state: 'unknown' });
  });

  it('reads final states from scontrol -o show job, one line per element', () => {
    const text =
      'JobId=23 ArrayJobId=22 ArrayTaskId=0 JobName=wrap UserId=root(0) JobState=OUT_OF_MEMORY Reason=OutOfMemory Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:125 NodeList=localhost\n' +
      'JobId=22 ArrayJobId=22 ArrayTaskId=3-5 JobName=wrap JobState=CANCELLED Reason=None ExitCode=0:0\n' +
      'JobId=24 ArrayJobId=22 ArrayTaskId=1 JobName=wrap JobState=TIMEOUT Reason=TimeLimit ExitCode=0:15\n';
    const reports = parseScontrolJobs(text);
    expect(reports.get('22.0')).toMatchObject({ end: { state: 'oom' } });
    expect(reports.get('22.0')!.detail).toContain('OUT_OF_MEMORY (OutOfMemory)');
    expect(reports.get('22.1')).toMatchObject({ end: { state: 'timeout' } });
    expect(reports.has('22.3')).toBe(false);
  });

  it('reads states and usage from sacct, the usage from the steps', () => {
    const text = '7_0|COMPLETED|0:0||00:00.002\n7_0.batch|COMPLETED|0:0|1536K|00:01.500\n7_1|OUT_OF_MEMORY|0:125||\n7_1.batch|OUT_OF_MEMORY|0:125|204800K|01:02\n';
    const reports = parseSacct(text);
    expect(reports.get('7.0')).toMatchObject({ end: { state: 'completed' }, usage: { peakMemory: 1536 * 1024, cpuMs: 1500 } });
    expect(reports.get('7.1')).toMatchObject({ end: { state: 'oom' }, usage: { peakMemory: 204800 * 1024, cpuMs: 62_000 } });
  });

  it('reads SLURM sizes and durations', () => {
    expect(parseSlurmSize('1234K')).toBe(1234 * 1024);
    expect(parseSlurmSize('2G')).toBe(2 * 1024 ** 3);
    expect(parseSlurmSize('')).toBe(0);
    expect(parseSlurmDuration('1-02:03:04')).toBe(((24 + 2) * 3600 + 3 * 60 + 4) * 1000);
    expect(parseSlurmDuration('00:01.500')).toBe(1500);
  });
});
