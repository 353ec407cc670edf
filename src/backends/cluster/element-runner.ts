import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { shellQuote } from '../../job/shell-quote.js';
import { ELEMENT_IN_CONTAINER_VARIABLE } from '../../container/container-command.js';
import { CONTAINER_LIMITS_FILE, RESULT_FILE, STDERR_FILE, STDOUT_FILE } from '../../runner/result-record.js';
import type { AttemptLaunch } from '../backend.js';

/**
 * What runs on a cluster node. It needs only a POSIX shell and the shared filesystem: no Node,
 * no fanout install. An array element runs the attempts on its line of the element list one
 * after another, each the way fanout's local launcher would: in its folder, logs to files, the
 * output committed only on success, the result record written last (temp file, then rename).
 *
 * Memory is the scheduler's to enforce: it kills an element that passes its memory, and the
 * backend then reads how it ended from the scheduler. Peak memory is the element's cgroup's
 * (SLURM with cgroups), else GNU time's max RSS, else unknown (null in the record, never 0). An attempt with a log but no result
 * record was the one running; one without a log never started. Time is enforced per attempt
 * here too, with coreutils' `timeout` when the node has it (terminate, then kill after the
 * grace period), because a packed element's limit is the sum of its attempts'.
 */

const RUNNER_FILE = 'fanout-element.sh';
/** Per attempt: `cd` into its folder, its environment, then its command. */
const TASK_FILE = '.fanout.task';
/** Per attempt: id, staging and final output paths, as shell assignments. */
const COMMIT_FILE = '.fanout.commit';

const RUNNER = `#!/bin/sh
# fanout element runner (written by fanout; see src/backends/cluster/element-runner.ts).
# usage: ${RUNNER_FILE} RUN_DIR ELEMENT_LIST ELEMENT  -- runs the attempts on line ELEMENT.
run_dir=$1
list=$2
element=$3
host=$(hostname 2>/dev/null || uname -n)
has_timeout=$(command -v timeout 2>/dev/null)

now_ms() {
  t=$(date +%s%N 2>/dev/null)
  case $t in
    *N|'') echo "$(($(date +%s) * 1000))" ;;
    *) echo "\${t%??????}" ;;
  esac
}

# Children's cpu time in ms from what \`times\` wrote (it must run in this shell, not a subshell).
children_cpu_ms() {
  awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/); printf "%d", (u[1] * 60 + u[2] + s[1] * 60 + s[2]) * 1000 }' "$1" 2>/dev/null || echo 0
}

# The memory cgroup the scheduler made for this job (SLURM's job_<id>/…), whose peak is the
# attempt's when elements are not packed; empty when the element has no cgroup of its own.
memory_peak_file() {
  cg=$(sed -n 's/^[0-9]*:[^:]*memory[^:]*://p' /proc/self/cgroup 2>/dev/null)
  case $cg in
    *job*) for f in "/sys/fs/cgroup/memory$cg/memory.max_usage_in_bytes" "/sys/fs/cgroup$cg/memory.peak"; do
             [ -r "$f" ] && { echo "$f"; return; }
           done ;;
  esac
  cg=$(sed -n 's/^0:://p' /proc/self/cgroup 2>/dev/null)
  case $cg in
    *job*) [ -r "/sys/fs/cgroup$cg/memory.peak" ] && echo "/sys/fs/cgroup$cg/memory.peak" ;;
  esac
}
peak_file=$(memory_peak_file)

# In a container of the element's own (container.per: element), that container's memory cgroup is
# the attempts': its peak (which cannot be reset from inside: a packed attempt's is the largest so
# far) and its oom kills, counted before and after each attempt, go where a container of the
# attempt's own would put them (${CONTAINER_LIMITS_FILE}).
oom_file=
if [ -n "$${ELEMENT_IN_CONTAINER_VARIABLE}" ]; then
  for f in /sys/fs/cgroup/memory/memory.max_usage_in_bytes /sys/fs/cgroup/memory.peak; do
    if [ -r "$f" ]; then peak_file=$f; break; fi
  done
  for f in /sys/fs/cgroup/memory/memory.oom_control /sys/fs/cgroup/memory.events; do
    if [ -r "$f" ]; then oom_file=$f; break; fi
  done
fi
oom_kills() {
  n=0
  if [ -n "$oom_file" ]; then while read -r key value; do [ "$key" = oom_kill ] && n=$value; done < "$oom_file"; fi
  echo "$n"
}

# Where the element has no cgroup to read, GNU time on the node's PATH measures an attempt's
# largest process (its max RSS); where sh is bash, \`command -v time\` names its keyword.
gnu_time=
if [ -z "$peak_file" ]; then
  case $(command -v time 2>/dev/null) in
    /*) gnu_time=$(command -v time) ;;
    time) gnu_time=/usr/bin/time ;;
  esac
  [ -n "$gnu_time" ] && ! "$gnu_time" -f %M -o /dev/null true 2>/dev/null && gnu_time=
fi

# Move the staged output into place; an earlier output is moved aside first, then removed.
commit_output() {
  mkdir -p "\${final%/*}" || return 1
  if [ -e "$final" ] || [ -L "$final" ]; then
    rm -rf "$staging.replaced" && mv "$final" "$staging.replaced" || return 1
  fi
  mv "$staging" "$final" || return 1
  rm -rf "$staging.replaced"
}

run_attempt() {
  dir=$run_dir/$1
  # Already ran: the scheduler restarted this element (requeue); keep the first result.
  [ -f "$dir/${RESULT_FILE}" ] && return 0
  id=0 staging='' final='' time_s='' grace_s=10 limits_inside=''
  . "$dir/${COMMIT_FILE}" || return 0
  [ -n "$staging" ] && mkdir -p "$staging"
  # A cgroup v1 peak can be reset, so each packed attempt gets its own; memory.peak cannot.
  [ -n "$peak_file" ] && echo 0 > "$peak_file" 2>/dev/null
  times > "$dir/.fanout.times"
  cpu_before=$(children_cpu_ms "$dir/.fanout.times")
  started=$(now_ms)
  ooms_before=$(oom_kills)
  rm -f "$dir/.fanout.peak"
  set -- /bin/sh "$dir/${TASK_FILE}"
  [ -n "$time_s" ] && [ -n "$has_timeout" ] && set -- timeout -k "$grace_s" "$time_s" "$@"
  # Outside timeout, whose signals go to its own process group: time must outlive the command.
  # An attempt in a container measures itself; GNU time would measure the engine's client.
  [ -n "$gnu_time" ] && [ -z "$limits_inside" ] && set -- "$gnu_time" -f %M -o "$dir/.fanout.peak" "$@"
  # In the background, so that a stop (below) reaches the attempt while it runs.
  "$@" > "$dir/${STDOUT_FILE}" 2> "$dir/${STDERR_FILE}" < /dev/null &
  child=$!
  wait "$child"
  code=$?
  while kill -0 "$child" 2>/dev/null; do wait "$child"; code=$?; done
  if [ -n "$oom_file" ]; then
    printf 'peak %s\noom_kill %s\n' "$(cat "$peak_file" 2>/dev/null)" "$(($(oom_kills) - ooms_before))" > "$dir/${CONTAINER_LIMITS_FILE}"
  fi
  # Stopped by the scheduler: the attempt ended because of it, and the scheduler's account says
  # how (cancelled, time limit), as when this element is killed outright; no record of ours.
  [ -n "$stopping" ] && exit 143
  ended=$(now_ms)
  times > "$dir/.fanout.times"
  cpu_ms=$(($(children_cpu_ms "$dir/.fanout.times") - cpu_before))
  rm -f "$dir/.fanout.times"
  # Unknown (null, never 0) unless the cgroup or GNU time measured it; GNU time writes
  # "Command exited with non-zero status N" before its figure, in KiB.
  peak=
  if [ -n "$peak_file" ]; then
    peak=$(cat "$peak_file" 2>/dev/null)
  elif [ -n "$gnu_time" ]; then
    kib=$(sed -n '$p' "$dir/.fanout.peak" 2>/dev/null)
    case $kib in ''|*[!0-9]*) ;; *) peak=$((kib * 1024)) ;; esac
  fi
  rm -f "$dir/.fanout.peak"
  # A container's own memory peak and oom kills, which this element cannot see (${CONTAINER_LIMITS_FILE}).
  container_oom=0
  if [ -r "$dir/${CONTAINER_LIMITS_FILE}" ]; then
    while read -r key value; do
      case $value in ''|*[!0-9]*) continue ;; esac
      case $key in peak) peak=$value ;; oom_kill) container_oom=$value ;; esac
    done < "$dir/${CONTAINER_LIMITS_FILE}"
  fi
  case $peak in ''|*[!0-9]*) peak=null ;; esac
  reason=ok exit_code=$code signal=null error=''
  if [ "$code" -ne 0 ] && [ "$container_oom" -gt 0 ]; then
    reason=oom
  elif [ "$code" -ne 0 ] && [ -n "$time_s" ] && [ $(((ended - started) / 1000)) -ge "$time_s" ]; then
    reason=timeout
    [ "$code" -gt 128 ] && exit_code=null signal="\\"SIG$(kill -l $((code - 128)) 2>/dev/null)\\""
  elif [ "$code" -gt 128 ] && [ "$code" -lt 160 ]; then
    reason=exit exit_code=null signal="\\"SIG$(kill -l $((code - 128)) 2>/dev/null)\\""
  elif [ "$code" -ne 0 ]; then
    reason=exit
  elif [ -n "$final" ] && ! commit_output 2>> "$dir/${STDERR_FILE}"; then
    reason=infra error=',"error":"could not move the output into place (see the attempt stderr)"'
  fi
  printf '{"id":%s,"reason":"%s","exitCode":%s,"signal":%s,"startedAt":%s,"endedAt":%s,"peakMemory":%s,"cpuMs":%s,"host":"%s","pid":null%s}\\n' \\
    "$id" "$reason" "$exit_code" "$signal" "$started" "$ended" "$peak" "\${cpu_ms:-0}" "$host" "$error" > "$dir/${RESULT_FILE}.tmp" &&
    mv "$dir/${RESULT_FILE}.tmp" "$dir/${RESULT_FILE}"
}

# A warning before the scheduler kills this element (Grid Engine's SIGUSR2 under -notify, a
# SIGTERM): the attempt is told to stop, and this element waits for it, runs no more attempts,
# and ends. An attempt in a container stops its container then (which SIGKILL would leave running).
stopping=''
stop_attempt() {
  stopping=1
  [ -n "$child" ] && kill -TERM "$child" 2>/dev/null
}
child=''
trap stop_attempt USR2 TERM

line=$(sed -n "\${element}p" "$list")
[ -n "$line" ] || { echo "fanout: element $element is not in $list" >&2; exit 3; }
for attempt in $line; do
  [ -n "$stopping" ] && break
  run_attempt "$attempt"
done
`;

/** Write the runner into a run's work folder (once per run; rewriting it is harmless). */
export function writeRunner(runDir: string): string {
  mkdirSync(runDir, { recursive: true });
  const path = join(runDir, RUNNER_FILE);
  writeFileSync(path, RUNNER, { mode: 0o755 });
  return path;
}

/** Write the files the runner reads for one attempt into its folder. */
export function writeAttemptFiles(launch: AttemptLaunch, graceMs: number): void {
  mkdirSync(launch.attemptDir, { recursive: true });
  const exports = Object.entries(launch.env)
    .filter(([key]) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(key))
    .map(([key, value]) => `export ${key}=${shellQuote(value)}\n`)
    .join('');
  // In a container shared by the element, the attempt runs its own command; otherwise its command starts its container.
  const command = launch.sharedContainer?.command ?? launch.command;
  const task = `cd ${shellQuote(launch.cwd)} || exit 125\n${exports}exec /bin/sh -c ${shellQuote(command)}\n`;
  writeFileSync(join(launch.attemptDir, TASK_FILE), task);
  const commit =
    `id=${launch.id}\n` +
    `staging=${launch.stagingOut ? shellQuote(launch.stagingOut) : "''"}\n` +
    `final=${launch.finalOut && launch.stagingOut ? shellQuote(launch.finalOut) : "''"}\n` +
    `time_s=${launch.timeMs === null ? "''" : Math.max(1, Math.ceil(launch.timeMs / 1000))}\n` +
    `grace_s=${Math.max(1, Math.ceil(graceMs / 1000))}\n` +
    `limits_inside=${launch.limitsInside ? 1 : "''"}\n`;
  writeFileSync(join(launch.attemptDir, COMMIT_FILE), commit);
}
