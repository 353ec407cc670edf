import { describe, expect, it } from 'vitest';
import { parseErrorReasons, parseQacct, parseQacctMaxrss, parseQhost, parseQstat, parseSgeDuration, parseSgeSize, sgeEnd } from './sge-scheduler.js';

// Outputs as Grid Engine 8.1.9 printed them on the single-node cluster of scripts/hpc/sge.sh.

const QSTAT = `job-ID  prior   name       user         state submit/start at     queue                          slots ja-task-ID
-----------------------------------------------------------------------------------------------------------------
      1 0.50000 sleep      root         r     11/22/2026 02:15:40 all.q@vm                           1 1
      1 0.50000 sleep      root         qw    11/22/2026 02:15:40                                    1 3
      2 0.50000 other      root         r     11/22/2026 02:15:40 all.q@vm                           1 1
`;

const QACCT = `==============================================================
qname        all.q
hostname     vm
jobname      fanout-job-1
jobnumber    41
taskid       2
failed       0
exit_status  0
ru_wallclock 5s
ru_maxrss    4.914KB
cpu          0.012s
maxvmem      3.324MB
category     -l h_rt=63,h_vmem=128M
==============================================================
qname        all.q
jobnumber    41
taskid       3
failed       100 : assumedly after job
exit_status  137                  (Killed)
ru_wallclock 3s
ru_maxrss    184.320KB
cpu          2.500s
maxvmem      300.125MB
category     -l h_rt=63,h_vmem=128M
`;

describe('Grid Engine output parsing', () => {
  it('reads hosts from qhost, skipping the global line', () => {
    const text = `HOSTNAME                ARCH         NCPU NSOC NCOR NTHR  LOAD  MEMTOT  MEMUSE  SWAPTO  SWAPUS
----------------------------------------------------------------------------------------------
global                  -               -    -    -    -     -       -       -       -       -
vm                      lx-amd64        2    1    2    2  0.55   23.5G  568.4M     0.0     0.0
`;
    expect(parseQhost(text)).toEqual([{ name: 'vm', cpus: 2, memory: Math.round(23.5 * 1024 ** 3) }]);
  });

  it('reads array tasks from qstat -g d, pending ones without a queue column', () => {
    expect([...parseQstat(QSTAT, new Set(['1']))]).toEqual([
      ['1.1', 'running'],
      ['1.3', 'queued'],
    ]);
  });

  it('tells an element in the error state (Eqw) from a waiting one, and reads why from qstat -j', () => {
    const eqw = `     13 0.50000 clu-eqw    root         Eqw   12/02/2026 05:22:20                                    1 1
     13 0.50000 clu-eqw    root         qw    12/02/2026 05:22:20                                    1 2
`;
    expect([...parseQstat(eqw, new Set(['13']))]).toEqual([
      ['13.1', 'error'],
      ['13.2', 'queued'],
    ]);
    const detail = `job_number:                 13
job_name:                   clu-eqw
error reason          1:      12/02/2026 05:22:27 [0:1318]: error: can't chdir to /nonexistent-dir-xyz: No such file or directory
`;
    expect([...parseErrorReasons(detail)]).toEqual([[1, "error: can't chdir to /nonexistent-dir-xyz: No such file or directory"]]);
  });

  it('reads each task’s end and usage from qacct', () => {
    const reports = parseQacct(QACCT);
    expect(reports.get('41.2')).toMatchObject({ end: { state: 'completed', exitCode: 0 }, usage: { cpuMs: 12 } });
    expect(reports.get('41.3')).toMatchObject({ end: { state: 'oom' }, usage: { peakMemory: 180 * 1024 ** 2, cpuMs: 2500 } });
  });

  it('reads ru_maxrss as the KiB it is, though qacct prints it as bytes; absent is unknown', () => {
    // A job whose GNU time said 110508 KiB for its Python (100 MiB touched) showed `107.918KB`.
    expect(parseQacctMaxrss('107.918KB')).toBe(107_918 * 1024);
    expect(parseQacctMaxrss('4.914KB')).toBe(4914 * 1024);
    expect(parseQacctMaxrss('0.000B')).toBeNull();
    expect(parseQacctMaxrss('')).toBeNull();
  });

  it('says a task’s memory reached its h_vmem when its maxvmem came within the margin, whatever its exit', () => {
    // Real: Python allocating 8 MiB chunks under h_vmem=200M, MemoryError, exit 1 (the runner exits 0).
    const failedAllocation = `jobnumber    2
taskid       1
failed       0
exit_status  0
ru_maxrss    192.066KB
maxvmem      193.836MB
category     -l h_vmem=200M
`;
    expect(parseQacct(failedAllocation).get('2.1')).toMatchObject({ end: { state: 'completed' }, memoryLimitReached: true });
    expect(parseQacct(QACCT).get('41.2')).toMatchObject({ memoryLimitReached: false });
  });

  it('tells a timeout, an oom, a deletion and a failure apart', () => {
    const category = '-l h_rt=5,h_vmem=100M';
    expect(sgeEnd({ failed: '37  : qmaster enforced h_rt, h_cpu, or h_vmem limit', exitStatus: 137, maxvmem: 0, wallclockS: 6, category })).toEqual({ state: 'timeout' });
    expect(sgeEnd({ failed: '100 : assumedly after job', exitStatus: 137, maxvmem: 101 * 2 ** 20, wallclockS: 2, category })).toEqual({ state: 'oom' });
    expect(sgeEnd({ failed: '100 : assumedly after job', exitStatus: 137, maxvmem: 10 * 2 ** 20, wallclockS: 2, category })).toEqual({ state: 'cancelled' });
    expect(sgeEnd({ failed: '0', exitStatus: 2, maxvmem: 0, wallclockS: 1, category })).toEqual({ state: 'failed', exitCode: 2 });
    expect(sgeEnd({ failed: '27 : searching requested shell', exitStatus: 0, maxvmem: 0, wallclockS: 0, category: '' })).toMatchObject({ state: 'node-failure' });
  });

  it('reads Grid Engine sizes and durations', () => {
    expect(parseSgeSize('3.324MB')).toBe(Math.round(3.324 * 1024 ** 2));
    expect(parseSgeSize('128M')).toBe(128 * 1024 ** 2);
    expect(parseSgeSize('0.000B')).toBe(0);
    expect(parseSgeDuration('70')).toBe(70);
    expect(parseSgeDuration('0:1:10')).toBe(70);
  });
});
