/*
 * fanout-launcher: the one small process that starts, supervises and records fanout's attempts.
 *
 * Node's spawn blocks the coordinator for about a millisecond per task and dies with it; this
 * process starts tasks cheaply (posix_spawn, i.e. vfork+exec), enforces their time and memory
 * limits, commits their outputs and leaves a result record per attempt, even after the
 * coordinator is gone. The protocol (requests on stdin, `done` lines on stdout) is described in
 * src/runner/launcher.ts, its only client.
 *
 * Single-threaded: one poll() loop over stdin, a self-pipe fed by the signal handlers, and stdout
 * when it has a backlog.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 29))
#define HAVE_SPAWN_CHDIR 1
#else
#define HAVE_SPAWN_CHDIR 0
#endif

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

extern char **environ;

enum kill_reason { KILLED_NONE, KILLED_TIMEOUT, KILLED_CANCELLED, KILLED_OOM };

typedef struct {
    long long id;
    pid_t pid; /* also the process group id */
    enum kill_reason killed;
    char *attempt_dir;
    char *staging;
    char *final;
    long long memory_limit;
    long long grace_ms;
    int64_t deadline;     /* monotonic ms of the time limit; 0 = none */
    int64_t sigkill_at;   /* monotonic ms of the pending SIGKILL escalation; 0 = none */
    int64_t started_at;   /* epoch ms */
    long long peak;
    long long sample_sum; /* scratch for one /proc scan */
} attempt_t;

typedef struct {
    char *data;
    size_t len;
    size_t cap;
} buf_t;

static attempt_t **attempts;
static size_t attempt_count, attempt_cap;

static buf_t inbuf, outbuf;
static int input_closed;
static int stdout_dead;
static int self_pipe[2];
static volatile sig_atomic_t got_sigterm;
static int devnull_fd = -1;
static char hostname_buf[256];
static long page_size;
static int64_t sample_ms = 100;
static int64_t next_sample; /* 0 = not scheduled */
static int sampling_disabled;
static int use_fork;
static posix_spawnattr_t spawn_attr;

/* ---------- small utilities ---------- */

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fputs("fanout-launcher: out of memory\n", stderr);
        _exit(70);
    }
    return q;
}

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = xrealloc(NULL, n);
    memcpy(d, s, n);
    return d;
}

static void buf_append(buf_t *b, const char *s, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        b->data = xrealloc(b->data, cap);
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

static void buf_puts(buf_t *b, const char *s) { buf_append(b, s, strlen(s)); }

static void buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(buf_t *b, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        buf_append(b, tmp, (size_t)n);
        return;
    }
    char *big = xrealloc(NULL, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    buf_append(b, big, (size_t)n);
    free(big);
}

static void buf_json_string(buf_t *b, const char *s) {
    buf_append(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': buf_append(b, "\\\"", 2); break;
        case '\\': buf_append(b, "\\\\", 2); break;
        case '\n': buf_append(b, "\\n", 2); break;
        case '\r': buf_append(b, "\\r", 2); break;
        case '\t': buf_append(b, "\\t", 2); break;
        default:
            if (*p < 0x20 || *p == 0x7f) buf_printf(b, "\\u%04x", *p);
            else buf_append(b, (const char *)p, 1);
        }
    }
    buf_append(b, "\"", 1);
}

static int64_t clock_ms(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
static int64_t mono_ms(void) { return clock_ms(CLOCK_MONOTONIC); }
static int64_t wall_ms(void) { return clock_ms(CLOCK_REALTIME); }

static char *path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = xrealloc(NULL, a + b + 2);
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

/* Existing folders cost one syscall; only missing ancestors are walked. */
static int mkdir_p(const char *path) {
    if (mkdir(path, 0777) == 0 || errno == EEXIST) return 0;
    if (errno != ENOENT) return -1;
    char *parent = xstrdup(path);
    char *slash = strrchr(parent, '/');
    while (slash && slash > parent && slash[1] == '\0') { /* trailing slashes */
        *slash = '\0';
        slash = strrchr(parent, '/');
    }
    int rc = -1;
    if (slash && slash != parent) {
        *slash = '\0';
        if (mkdir_p(parent) == 0) rc = (mkdir(path, 0777) == 0 || errno == EEXIST) ? 0 : -1;
    } else {
        errno = ENOENT;
    }
    int saved = errno;
    free(parent);
    errno = saved;
    return rc;
}

static const char *signal_name(int sig, char *tmp, size_t n) {
    static const struct { int sig; const char *name; } table[] = {
        {SIGHUP, "SIGHUP"},   {SIGINT, "SIGINT"},   {SIGQUIT, "SIGQUIT"}, {SIGILL, "SIGILL"},
        {SIGTRAP, "SIGTRAP"}, {SIGABRT, "SIGABRT"}, {SIGBUS, "SIGBUS"},   {SIGFPE, "SIGFPE"},
        {SIGKILL, "SIGKILL"}, {SIGUSR1, "SIGUSR1"}, {SIGSEGV, "SIGSEGV"}, {SIGUSR2, "SIGUSR2"},
        {SIGPIPE, "SIGPIPE"}, {SIGALRM, "SIGALRM"}, {SIGTERM, "SIGTERM"},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].sig == sig) return table[i].name;
    snprintf(tmp, n, "SIG%d", sig);
    return tmp;
}

/* ---------- signals ---------- */

static void wake(void) {
    int saved = errno;
    char c = 0;
    ssize_t r = write(self_pipe[1], &c, 1); /* full pipe: a wake-up is already pending */
    (void)r;
    errno = saved;
}

static void on_sigchld(int sig) { (void)sig; wake(); }
static void on_sigterm(int sig) { (void)sig; got_sigterm = 1; wake(); }

static void setup_signals(void) {
    if (pipe(self_pipe) != 0) {
        perror("fanout-launcher: pipe");
        exit(70);
    }
    for (int i = 0; i < 2; i++) {
        fcntl(self_pipe[i], F_SETFD, FD_CLOEXEC);
        fcntl(self_pipe[i], F_SETFL, O_NONBLOCK);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sa.sa_handler = on_sigchld;
    sigaction(SIGCHLD, &sa, NULL);
    sa.sa_flags = SA_RESTART;
    sa.sa_handler = on_sigterm;
    sigaction(SIGTERM, &sa, NULL);
    /* A terminal Ctrl-C is the coordinator's business; a vanished reader must not kill us. */
    sa.sa_handler = SIG_IGN;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGPIPE, &sa, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

/* ---------- output ---------- */

static void flush_stdout(void) {
    if (stdout_dead) {
        outbuf.len = 0;
        return;
    }
    size_t off = 0;
    while (off < outbuf.len) {
        ssize_t w = write(STDOUT_FILENO, outbuf.data + off, outbuf.len - off);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        /* EPIPE: nobody listens any more; the result records still tell the story. */
        stdout_dead = 1;
        outbuf.len = 0;
        return;
    }
    memmove(outbuf.data, outbuf.data + off, outbuf.len - off);
    outbuf.len -= off;
}

/* ---------- attempts ---------- */

static attempt_t *find_by_id(long long id) {
    for (size_t i = 0; i < attempt_count; i++)
        if (attempts[i]->id == id) return attempts[i];
    return NULL;
}

static attempt_t *find_by_pid(pid_t pid) {
    for (size_t i = 0; i < attempt_count; i++)
        if (attempts[i]->pid == pid) return attempts[i];
    return NULL;
}

static void free_attempt(attempt_t *a) {
    free(a->attempt_dir);
    free(a->staging);
    free(a->final);
    free(a);
}

static void remove_attempt(attempt_t *a) {
    for (size_t i = 0; i < attempt_count; i++) {
        if (attempts[i] == a) {
            attempts[i] = attempts[--attempt_count];
            break;
        }
    }
    free_attempt(a);
}

typedef struct {
    const char *reason;
    int has_exit_code;
    int exit_code;
    int signal; /* 0 = none */
    int64_t ended_at;
    long long cpu_ms;
    pid_t pid; /* 0 = never started */
    const char *error;
} outcome_t;

static void write_record(const attempt_t *a, const outcome_t *o) {
    buf_t j = {0};
    char sigtmp[16];
    buf_printf(&j, "{\"id\":%lld,\"reason\":\"%s\",\"exitCode\":", a->id, o->reason);
    if (o->has_exit_code) buf_printf(&j, "%d", o->exit_code);
    else buf_puts(&j, "null");
    buf_puts(&j, ",\"signal\":");
    if (o->signal) buf_json_string(&j, signal_name(o->signal, sigtmp, sizeof sigtmp));
    else buf_puts(&j, "null");
    buf_printf(&j, ",\"startedAt\":%lld,\"endedAt\":%lld,\"peakMemory\":%lld,\"cpuMs\":%lld,\"host\":",
               (long long)a->started_at, (long long)o->ended_at, a->peak, o->cpu_ms);
    buf_json_string(&j, hostname_buf);
    if (o->pid) buf_printf(&j, ",\"pid\":%ld", (long)o->pid);
    else buf_puts(&j, ",\"pid\":null");
    if (o->error) {
        buf_puts(&j, ",\"error\":");
        buf_json_string(&j, o->error);
    }
    buf_puts(&j, "}\n");

    char *tmp = path_join(a->attempt_dir, ".fanout.result.json.tmp");
    char *dst = path_join(a->attempt_dir, ".fanout.result.json");
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int ok = fd >= 0;
    size_t off = 0;
    while (ok && off < j.len) {
        ssize_t w = write(fd, j.data + off, j.len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) ok = 0;
        else off += (size_t)w;
    }
    if (fd >= 0 && close(fd) != 0) ok = 0;
    if (ok && rename(tmp, dst) != 0) ok = 0;
    if (!ok && fd >= 0) {
        /* The report line still carries the outcome; say why the record is missing. */
        fprintf(stderr, "fanout-launcher: could not write %s: %s\n", dst, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    free(dst);
    free(j.data);
}

static void report(const attempt_t *a, const outcome_t *o) {
    char sigtmp[16];
    buf_printf(&outbuf, "done %lld %s ", a->id, o->reason);
    if (o->has_exit_code) buf_printf(&outbuf, "%d ", o->exit_code);
    else buf_puts(&outbuf, "- ");
    buf_puts(&outbuf, o->signal ? signal_name(o->signal, sigtmp, sizeof sigtmp) : "-");
    buf_printf(&outbuf, " %lld %lld %lld %lld", (long long)a->started_at, (long long)o->ended_at,
               a->peak, o->cpu_ms);
    if (o->error) {
        /* Infra errors ride at the end of the line, so they arrive even without a record. */
        buf_puts(&outbuf, " ");
        size_t start = outbuf.len;
        buf_puts(&outbuf, o->error);
        for (size_t i = start; i < outbuf.len; i++)
            if (outbuf.data[i] == '\n' || outbuf.data[i] == '\r') outbuf.data[i] = ' ';
    }
    buf_puts(&outbuf, "\n");
}

static void finish(attempt_t *a, const outcome_t *o) {
    write_record(a, o);
    report(a, o);
}

static void finish_infra(attempt_t *a, const char *error) {
    outcome_t o = {0};
    o.reason = "infra";
    o.ended_at = wall_ms();
    o.error = error;
    finish(a, &o);
}

/* renameat2 may lack a libc wrapper; the raw syscall reaches every kernel that has it. */
static int rename_exchange(const char *a, const char *b) {
#ifdef SYS_renameat2
    return (int)syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE);
#else
    (void)a;
    (void)b;
    errno = ENOSYS;
    return -1;
#endif
}

/* Returns NULL on success, else an error message (malloc'd). */
static char *commit_output(const attempt_t *a) {
    char msg[PATH_MAX * 2 + 128];
    char *parent = xstrdup(a->final);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = '\0';
        mkdir_p(parent);
    }
    free(parent);

    for (int tries = 0; tries < 2; tries++) {
        if (rename(a->staging, a->final) == 0) return NULL;
        int e = errno;
        struct stat st;
        if (e == ENOENT && lstat(a->staging, &st) != 0 && errno == ENOENT) {
            /* The task removed its output folder: it produced nothing, which still commits. */
            if (mkdir(a->staging, 0777) != 0 && errno != EEXIST) {
                snprintf(msg, sizeof msg, "could not create the empty output %s: %s", a->staging,
                         strerror(errno));
                return xstrdup(msg);
            }
            continue;
        }
        if (e == ENOTEMPTY || e == EEXIST) {
            /* The old output ends up at the staging path, where the coordinator removes it. */
            if (rename_exchange(a->staging, a->final) == 0) return NULL;
            if (errno != ENOSYS && errno != EINVAL) {
                snprintf(msg, sizeof msg, "could not swap %s into %s: %s", a->staging, a->final,
                         strerror(errno));
                return xstrdup(msg);
            }
            size_t n = strlen(a->final) + 64;
            char *aside = xrealloc(NULL, n);
            snprintf(aside, n, "%s.fanout-old-%lld", a->final, a->id);
            if (rename(a->final, aside) != 0) {
                snprintf(msg, sizeof msg, "could not move the old output %s aside: %s", a->final,
                         strerror(errno));
                free(aside);
                return xstrdup(msg);
            }
            if (rename(a->staging, a->final) != 0) {
                int e2 = errno;
                rename(aside, a->final);
                snprintf(msg, sizeof msg, "could not move %s to %s: %s", a->staging, a->final,
                         strerror(e2));
                free(aside);
                return xstrdup(msg);
            }
            rename(aside, a->staging); /* best effort: same place as after an exchange */
            free(aside);
            return NULL;
        }
        snprintf(msg, sizeof msg, "could not move %s to %s: %s", a->staging, a->final, strerror(e));
        return xstrdup(msg);
    }
    snprintf(msg, sizeof msg, "could not move %s to %s: it keeps disappearing", a->staging, a->final);
    return xstrdup(msg);
}

static void send_group(const attempt_t *a, int sig) {
    if (a->pid > 0) killpg(a->pid, sig);
}

static void terminate_attempt(attempt_t *a, enum kill_reason why, int now_kill) {
    if (a->killed == KILLED_OOM) return; /* already SIGKILLed; it is as good as ended */
    a->killed = why;
    if (now_kill || a->grace_ms <= 0) {
        send_group(a, SIGKILL);
        a->sigkill_at = 0;
        return;
    }
    send_group(a, SIGTERM);
    int64_t at = mono_ms() + a->grace_ms;
    if (a->sigkill_at == 0 || at < a->sigkill_at) a->sigkill_at = at;
}

static char **build_env(char **given, size_t n_given) {
    size_t n_env = 0;
    while (environ[n_env]) n_env++;
    char **envp = xrealloc(NULL, (n_env + n_given + 1) * sizeof *envp);
    size_t k = 0;
    for (size_t i = 0; i < n_env; i++) {
        const char *e = environ[i];
        const char *eq = strchr(e, '=');
        size_t keylen = eq ? (size_t)(eq - e) : strlen(e);
        int overridden = 0;
        for (size_t g = 0; g < n_given && !overridden; g++)
            overridden = strncmp(given[g], e, keylen) == 0 && given[g][keylen] == '=';
        if (!overridden) envp[k++] = environ[i];
    }
    for (size_t g = 0; g < n_given; g++) envp[k++] = given[g];
    envp[k] = NULL;
    return envp;
}

/* The fork path exists for libcs whose posix_spawn cannot chdir; it keeps the same semantics. */
static pid_t spawn_with_fork(const char *cwd, const char *command, char **envp, int out_fd,
                             int err_fd, int *err) {
    pid_t pid = fork();
    if (pid < 0) {
        *err = errno;
        return -1;
    }
    if (pid == 0) {
        setpgid(0, 0);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_DFL;
        sigemptyset(&sa.sa_mask);
        for (int s = 1; s < NSIG; s++) sigaction(s, &sa, NULL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (dup2(devnull_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0) _exit(127);
        if (chdir(cwd) != 0) {
            dprintf(2, "fanout: could not enter %s: %s\n", cwd, strerror(errno));
            _exit(127);
        }
        char *argv[] = {"sh", "-c", (char *)command, NULL};
        execve("/bin/sh", argv, envp);
        dprintf(2, "fanout: could not run /bin/sh: %s\n", strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid); /* also from here, so a kill right after fork already reaches the group */
    return pid;
}

static pid_t spawn_task(const char *cwd, const char *command, char **envp, int out_fd, int err_fd,
                        int *err) {
#if HAVE_SPAWN_CHDIR
    if (!use_fork) {
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addchdir_np(&fa, cwd);
        posix_spawn_file_actions_adddup2(&fa, devnull_fd, 0);
        posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
        posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
        char *argv[] = {"sh", "-c", (char *)command, NULL};
        pid_t pid = -1;
        int rc = posix_spawn(&pid, "/bin/sh", &fa, &spawn_attr, argv, envp);
        posix_spawn_file_actions_destroy(&fa);
        if (rc != 0) {
            *err = rc;
            return -1;
        }
        return pid;
    }
#endif
    return spawn_with_fork(cwd, command, envp, out_fd, err_fd, err);
}

static void start_attempt(char **f, char **env, size_t n_env) {
    /* f: id attemptDir cwd stagingOut finalOut memoryBytes timeMs graceMs command */
    attempt_t *a = xrealloc(NULL, sizeof *a);
    memset(a, 0, sizeof *a);
    a->id = strtoll(f[0], NULL, 10);
    if (find_by_id(a->id)) {
        fprintf(stderr, "fanout-launcher: attempt %lld is already running; request ignored\n", a->id);
        free(a);
        return;
    }
    a->attempt_dir = xstrdup(f[1]);
    a->staging = f[3][0] ? xstrdup(f[3]) : NULL;
    a->final = f[4][0] ? xstrdup(f[4]) : NULL;
    a->memory_limit = strtoll(f[5], NULL, 10);
    long long time_ms = strtoll(f[6], NULL, 10);
    a->grace_ms = strtoll(f[7], NULL, 10);
    a->started_at = wall_ms();

    char msg[PATH_MAX + 128];
    if (mkdir_p(a->attempt_dir) != 0) {
        snprintf(msg, sizeof msg, "could not create the attempt folder %s: %s", a->attempt_dir,
                 strerror(errno));
        finish_infra(a, msg);
        free_attempt(a);
        return;
    }
    const char *cwd = f[2];
    const char *failed = NULL;
    if (mkdir_p(cwd) != 0) failed = cwd;
    else if (a->staging && mkdir_p(a->staging) != 0) failed = a->staging;
    if (failed) {
        snprintf(msg, sizeof msg, "could not create the folder %s: %s", failed, strerror(errno));
        finish_infra(a, msg);
        free_attempt(a);
        return;
    }
    char *out_path = path_join(a->attempt_dir, ".fanout.out");
    char *err_path = path_join(a->attempt_dir, ".fanout.err");
    int out_fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int err_fd = out_fd < 0 ? -1 : open(err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (err_fd < 0) {
        snprintf(msg, sizeof msg, "could not open %s: %s", out_fd < 0 ? out_path : err_path,
                 strerror(errno));
        if (out_fd >= 0) close(out_fd);
        free(out_path), free(err_path);
        finish_infra(a, msg);
        free_attempt(a);
        return;
    }
    free(out_path), free(err_path);

    char **envp = build_env(env, n_env);
    int err = 0;
    a->started_at = wall_ms();
    pid_t pid = spawn_task(cwd, f[8], envp, out_fd, err_fd, &err);
    free(envp);
    if (pid < 0) {
        snprintf(msg, sizeof msg, "could not start /bin/sh: %s", strerror(err));
        dprintf(err_fd, "fanout: %s\n", msg);
        close(out_fd), close(err_fd);
        finish_infra(a, msg);
        free_attempt(a);
        return;
    }
    close(out_fd), close(err_fd);
    a->pid = pid;
    if (time_ms > 0) a->deadline = mono_ms() + time_ms;

    if (attempt_count == attempt_cap) {
        attempt_cap = attempt_cap ? attempt_cap * 2 : 16;
        attempts = xrealloc(attempts, attempt_cap * sizeof *attempts);
    }
    attempts[attempt_count++] = a;
    if (!next_sample && !sampling_disabled) next_sample = mono_ms() + sample_ms;
}

/* A container's last step writes its memory cgroup's peak and oom kills here (the processes run
 * under the engine, where this launcher cannot see them): see src/runner/result-record.ts,
 * CONTAINER_LIMITS_FILE. Absent for commands not in a container. */
static void read_container_limits(const attempt_t *a, long long *peak, long long *oom_kills) {
    *peak = -1, *oom_kills = 0;
    char *path = path_join(a->attempt_dir, ".fanout.container");
    FILE *f = fopen(path, "r");
    free(path);
    if (!f) return;
    char key[32];
    long long value;
    for (;;) {
        int n = fscanf(f, "%31s %lld", key, &value);
        if (n == EOF) break;
        if (n != 2) {
            /* a key without a number (not measured): skip the rest of its line */
            int c;
            while ((c = fgetc(f)) != EOF && c != '\n') {}
            continue;
        }
        if (strcmp(key, "peak") == 0) *peak = value;
        else if (strcmp(key, "oom_kill") == 0) *oom_kills = value;
    }
    fclose(f);
}

static void complete(attempt_t *a, int status, const struct rusage *ru) {
    outcome_t o = {0};
    o.ended_at = wall_ms();
    o.pid = a->pid;
    o.cpu_ms = (long long)ru->ru_utime.tv_sec * 1000 + ru->ru_utime.tv_usec / 1000 +
               (long long)ru->ru_stime.tv_sec * 1000 + ru->ru_stime.tv_usec / 1000;
#ifdef __APPLE__
    long long maxrss = (long long)ru->ru_maxrss; /* bytes there */
#else
    long long maxrss = (long long)ru->ru_maxrss * 1024;
#endif
    if (maxrss > a->peak) a->peak = maxrss;
    if (WIFEXITED(status)) {
        o.has_exit_code = 1;
        o.exit_code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        o.signal = WTERMSIG(status);
    }
    long long container_peak, container_oom_kills;
    read_container_limits(a, &container_peak, &container_oom_kills);
    if (container_peak >= 0) a->peak = container_peak;
    int failed = !(o.has_exit_code && o.exit_code == 0);
    if (a->killed == KILLED_NONE && failed && container_oom_kills > 0) a->killed = KILLED_OOM;
    char *error = NULL;
    switch (a->killed) {
    case KILLED_OOM: o.reason = "oom"; break;
    case KILLED_TIMEOUT: o.reason = "timeout"; break;
    case KILLED_CANCELLED: o.reason = "cancelled"; break;
    default:
        if (o.has_exit_code && o.exit_code == 0) {
            o.reason = "ok";
            if (a->staging && a->final && (error = commit_output(a)) != NULL) {
                o.reason = "infra";
                o.error = error;
            }
        } else {
            o.reason = "exit";
        }
    }
    finish(a, &o);
    free(error);
}

static void reap_children(void) {
    for (;;) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        /* WNOWAIT: the zombie leader keeps its process group id reserved while we kill strays. */
        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0) return;
        if (si.si_pid == 0) return;
        pid_t pid = si.si_pid;
        attempt_t *a = find_by_pid(pid);
        if (a) killpg(pid, SIGKILL);
        int status = 0;
        struct rusage ru;
        memset(&ru, 0, sizeof ru);
        pid_t r;
        do r = wait4(pid, &status, 0, &ru);
        while (r < 0 && errno == EINTR);
        if (a && r == pid) {
            complete(a, status, &ru);
            remove_attempt(a);
        }
    }
}

/* ---------- memory sampling ---------- */

static void sample_memory(void) {
#ifdef __linux__
    DIR *d = opendir("/proc");
    if (!d) {
        sampling_disabled = 1;
        return;
    }
    int dfd = dirfd(d);
    for (size_t i = 0; i < attempt_count; i++) attempts[i]->sample_sum = 0;
    struct dirent *e;
    char path[sizeof e->d_name + 8];
    char stat_buf[1024];
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
        snprintf(path, sizeof path, "%s/stat", e->d_name);
        int fd = openat(dfd, path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t n = read(fd, stat_buf, sizeof stat_buf - 1);
        close(fd);
        if (n <= 0) continue;
        stat_buf[n] = '\0';
        /* The command name may contain spaces and parentheses; fields resume after the last ')'. */
        char *p = strrchr(stat_buf, ')');
        if (!p) continue;
        p++;
        char state = 0;
        long long pgrp = 0, rss = 0;
        for (int field = 3; field <= 24 && *p; field++) {
            while (*p == ' ') p++;
            if (field == 3) state = *p;
            else if (field == 5) pgrp = strtoll(p, NULL, 10);
            else if (field == 24) rss = strtoll(p, NULL, 10);
            while (*p && *p != ' ') p++;
        }
        if (state == 'Z' || pgrp <= 0) continue;
        attempt_t *a = find_by_pid((pid_t)pgrp);
        if (a) a->sample_sum += rss * page_size;
    }
    closedir(d);
    for (size_t i = 0; i < attempt_count; i++) {
        attempt_t *a = attempts[i];
        if (a->sample_sum > a->peak) a->peak = a->sample_sum;
        if (a->memory_limit > 0 && a->sample_sum > a->memory_limit && a->killed != KILLED_OOM) {
            a->killed = KILLED_OOM;
            a->sigkill_at = 0;
            send_group(a, SIGKILL);
        }
    }
#else
    sampling_disabled = 1;
#endif
}

/* ---------- requests ---------- */

/* Finds the next NUL-terminated field at *pos; NULL when the buffer ends first. */
static char *next_field(size_t *pos) {
    if (*pos >= inbuf.len) return NULL;
    char *start = inbuf.data + *pos;
    char *nul = memchr(start, '\0', inbuf.len - *pos);
    if (!nul) return NULL;
    *pos = (size_t)(nul - inbuf.data) + 1;
    return start;
}

/* Handles one complete request at *pos; returns 0 when the request is not complete yet. */
static int handle_request(size_t *pos) {
    size_t p = *pos;
    char *verb = next_field(&p);
    if (!verb) return 0;
    if (strcmp(verb, "run") == 0) {
        char *f[10];
        for (int i = 0; i < 10; i++)
            if (!(f[i] = next_field(&p))) return 0;
        long long n_env = strtoll(f[9], NULL, 10);
        if (n_env < 0) n_env = 0;
        if ((size_t)n_env > inbuf.len - p) return 0; /* cannot be complete yet; spares a huge alloc */
        char **env = xrealloc(NULL, ((size_t)n_env + 1) * sizeof *env);
        for (long long i = 0; i < n_env; i++) {
            if (!(env[i] = next_field(&p))) {
                free(env);
                return 0;
            }
        }
        *pos = p;
        if (!input_closed) start_attempt(f, env, (size_t)n_env);
        free(env);
        return 1;
    }
    if (strcmp(verb, "cancel") == 0 || strcmp(verb, "kill") == 0) {
        char *id = next_field(&p);
        if (!id) return 0;
        *pos = p;
        attempt_t *a = find_by_id(strtoll(id, NULL, 10));
        if (a) terminate_attempt(a, KILLED_CANCELLED, verb[0] == 'k');
        return 1;
    }
    fprintf(stderr, "fanout-launcher: unknown request \"%s\"; skipped\n", verb);
    *pos = p;
    return 1;
}

static void read_requests(void) {
    char chunk[65536];
    ssize_t n = read(STDIN_FILENO, chunk, sizeof chunk);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (n <= 0) {
        /* The coordinator is gone or done: finish what runs, leave records, then exit. */
        input_closed = 1;
        return;
    }
    buf_append(&inbuf, chunk, (size_t)n);
    size_t pos = 0;
    while (handle_request(&pos)) {}
    memmove(inbuf.data, inbuf.data + pos, inbuf.len - pos);
    inbuf.len -= pos;
}

/* ---------- main loop ---------- */

static void check_deadlines(void) {
    int64_t now = mono_ms();
    for (size_t i = 0; i < attempt_count; i++) {
        attempt_t *a = attempts[i];
        if (a->deadline && a->killed == KILLED_NONE && now >= a->deadline)
            terminate_attempt(a, KILLED_TIMEOUT, 0);
        if (a->sigkill_at && now >= a->sigkill_at) {
            a->sigkill_at = 0;
            send_group(a, SIGKILL);
        }
    }
    if (next_sample && now >= next_sample) {
        sample_memory();
        next_sample = attempt_count && !sampling_disabled ? mono_ms() + sample_ms : 0;
    }
}

static int poll_timeout(void) {
    int64_t next = 0;
    for (size_t i = 0; i < attempt_count; i++) {
        const attempt_t *a = attempts[i];
        if (a->deadline && a->killed == KILLED_NONE && (!next || a->deadline < next)) next = a->deadline;
        if (a->sigkill_at && (!next || a->sigkill_at < next)) next = a->sigkill_at;
    }
    if (next_sample && (!next || next_sample < next)) next = next_sample;
    if (!next) return -1;
    int64_t wait = next - mono_ms();
    if (wait < 0) return 0;
    return wait > INT_MAX ? INT_MAX : (int)wait;
}

static void setup(void) {
    setup_signals();
    if (gethostname(hostname_buf, sizeof hostname_buf - 1) != 0) strcpy(hostname_buf, "localhost");
    page_size = sysconf(_SC_PAGESIZE);
    if (page_size <= 0) page_size = 4096;
    const char *s = getenv("FANOUT_SAMPLE_MS");
    if (s && atoll(s) > 0) sample_ms = atoll(s);
    const char *mode = getenv("FANOUT_LAUNCHER_SPAWN");
    use_fork = !HAVE_SPAWN_CHDIR || (mode && strcmp(mode, "fork") == 0);
    devnull_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull_fd < 0) {
        perror("fanout-launcher: /dev/null");
        exit(70);
    }
    /* Replies must never block supervision; a slow reader only grows our buffer. */
    fcntl(STDOUT_FILENO, F_SETFL, fcntl(STDOUT_FILENO, F_GETFL) | O_NONBLOCK);
#ifdef PR_SET_CHILD_SUBREAPER
    /* Orphans of a task come back to us and get reaped, whatever this machine's pid 1 does. */
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
#endif
    posix_spawnattr_init(&spawn_attr);
    sigset_t all, none;
    /* Not sigfillset: glibc leaves its two internal signals (32, 33) out of it, and its spawn
       (2.36 at least) then hands them to the task as ignored, which survives exec. */
    memset(&all, 0xff, sizeof all);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&spawn_attr, &all);
    posix_spawnattr_setsigmask(&spawn_attr, &none);
    posix_spawnattr_setpgroup(&spawn_attr, 0);
    posix_spawnattr_setflags(&spawn_attr,
                             POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
}

int main(void) {
    setup();
    int cancelled_all = 0;
    for (;;) {
        if (got_sigterm && !cancelled_all) {
            cancelled_all = 1;
            input_closed = 1;
            for (size_t i = 0; i < attempt_count; i++) terminate_attempt(attempts[i], KILLED_CANCELLED, 0);
        }
        if (input_closed && attempt_count == 0) break;

        struct pollfd pfd[3];
        nfds_t n = 0;
        pfd[n++] = (struct pollfd){.fd = self_pipe[0], .events = POLLIN};
        int in_idx = -1, out_idx = -1;
        if (!input_closed) {
            in_idx = (int)n;
            pfd[n++] = (struct pollfd){.fd = STDIN_FILENO, .events = POLLIN};
        }
        if (outbuf.len && !stdout_dead) {
            out_idx = (int)n;
            pfd[n++] = (struct pollfd){.fd = STDOUT_FILENO, .events = POLLOUT};
        }
        int rc = poll(pfd, n, poll_timeout());
        if (rc < 0 && errno != EINTR) {
            perror("fanout-launcher: poll");
            break;
        }
        if (rc > 0 && pfd[0].revents) {
            char drain[64];
            while (read(self_pipe[0], drain, sizeof drain) > 0) {}
        }
        reap_children();
        if (rc > 0 && in_idx >= 0 && pfd[in_idx].revents) read_requests();
        if (rc > 0 && out_idx >= 0 && (pfd[out_idx].revents & (POLLERR | POLLHUP)) && !(pfd[out_idx].revents & POLLOUT)) {
            stdout_dead = 1;
        }
        check_deadlines();
        flush_stdout();
    }
    /* Whatever is still buffered goes out before we exit, if anyone still reads. */
    fcntl(STDOUT_FILENO, F_SETFL, fcntl(STDOUT_FILENO, F_GETFL) & ~O_NONBLOCK);
    flush_stdout();
    return 0;
}
