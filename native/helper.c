/*
 * tsmpiexec-helper: an optional accelerator for isolation on Linux. Everything it does has a portable
 * fallback in src/isolate (sh, nsenter, setpriv, unshare, mount); it only does the same in one exec instead of
 * three to six, which is most of isolation's start-up cost (bench/README.md). `make build` compiles it when a C
 * compiler is present; without it tsmpiexec works the same, just slower. It is never installed setuid: it runs
 * as the job's owner with the owner's rights, like the shell recipe it replaces.
 *
 *   tsmpiexec-helper version
 *   tsmpiexec-helper exec [--join FILE]... [--mntns PATH] [--cpus LIST] [--mems MODE:LIST] [--label TEXT] [--argv0 NAME] -- PROGRAM ARGS...
 *       Write our own pid into each cgroup.procs FILE (before exec, so not even the program's first fork can
 *       escape), enter the mount namespace at PATH keeping the current directory, bind to the CPUs of LIST
 *       ("0-3,8", after joining: a cpuset cgroup resets the affinity of a task that joins it), set the memory
 *       policy (MODE bind or interleave over the NUMA nodes of LIST, set_mempolicy: it survives exec), then
 *       exec PROGRAM.
 *   tsmpiexec-helper holder --data OPTS --tmp-name NAME --shm-name NAME [--tmp-source DIR] [--keep PATH]...
 *       Die with the parent (pdeathsig), make a private mount namespace with a tmpfs on /tmp (or DIR bound
 *       there) and one on /dev/shm, bind each host entry PATH back over them, print "ready" and wait.
 *
 *   tsmpiexec-helper pipe-size BYTES
 *       If our stdout is a pipe smaller than BYTES, grow it to BYTES (F_SETPIPE_SZ), then report the size it
 *       has on stderr ("pipe-size N"). The launcher runs this on its own stdout or stderr once a pipe there
 *       fills (src/io/pipe-size.ts): a 64 KiB pipe to `| tee` or to ssh halves output throughput. Exit 1 when the
 *       size cannot be set (an unprivileged user over fs/pipe-max-size or the per-user pipe quota); 0 otherwise,
 *       also when stdout is not a pipe.
 *
 * Exit codes follow the shell recipe: 126 for a step that failed before exec, 127 for a missing program.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define HELPER_PROTOCOL "3"
#define MAX_LIST 64

/* One line on stderr, "MESSAGE: strerror(errno)", and exit. */
static void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void die(int code, const char *fmt, ...) {
  int saved = errno;
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, ": %s\n", strerror(saved));
  _exit(code); /* not exit(): this may be a vfork child (batch), which must not run the parent's exit path */
}

static int write_all(int fd, const char *s, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    s += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Writes our pid into a cgroup.procs file: never creates it (a missing file means a missing cgroup). */
static int join_cgroup(const char *procs) {
  char buf[32];
  int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
  int fd = open(procs, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  int rc = write_all(fd, buf, (size_t)n);
  int saved = errno;
  close(fd);
  errno = saved;
  return rc;
}

/* Batch mode: the pipe a rank's child writes the errno of a failed exec into (-1 outside a batch child), and the
   cgroup.procs files the child need not write because it is in that cgroup already: those the batch helper
   joined for itself, which every rank of the batch inherits. */
static int child_errno_fd = -1;
static const char *skip_join[MAX_LIST + 1];
static int nskip_join;

static int joined_already(const char *procs) {
  for (int k = 0; k < nskip_join; k++) {
    if (strcmp(skip_join[k], procs) == 0) return 1;
  }
  return 0;
}

/* "0-3,8" → set; -1 for anything else. */
static int parse_cpus(const char *text, cpu_set_t *set) {
  CPU_ZERO(set);
  const char *p = text;
  if (*p == '\0') return -1;
  while (*p != '\0') {
    char *end;
    long a = strtol(p, &end, 10);
    if (end == p || a < 0 || a >= CPU_SETSIZE) return -1;
    long b = a;
    if (*end == '-') {
      p = end + 1;
      b = strtol(p, &end, 10);
      if (end == p || b < a || b >= CPU_SETSIZE) return -1;
    }
    for (long c = a; c <= b; c++) CPU_SET((int)c, set);
    if (*end == ',') end++;
    else if (*end != '\0') return -1;
    p = end;
  }
  return 0;
}

/* The kernel's memory policy modes (linux/mempolicy.h), and the nodes a mask here can name. */
#define TSM_MPOL_BIND 2
#define TSM_MPOL_INTERLEAVE 3
#define MAX_NODES 1024

/* "bind:0-1" / "interleave:0,2" → mode and node mask (a raw system call: no libnuma needed); -1 when malformed. */
static int set_mems(const char *text) {
  int mode;
  const char *list;
  if (strncmp(text, "bind:", 5) == 0) mode = TSM_MPOL_BIND, list = text + 5;
  else if (strncmp(text, "interleave:", 11) == 0) mode = TSM_MPOL_INTERLEAVE, list = text + 11;
  else return errno = EINVAL, -1;
  unsigned long mask[MAX_NODES / (8 * sizeof(unsigned long))];
  memset(mask, 0, sizeof mask);
  const char *p = list;
  if (*p == '\0') return errno = EINVAL, -1;
  const size_t bits = 8 * sizeof(unsigned long);
  while (*p != '\0') {
    char *end;
    long a = strtol(p, &end, 10);
    if (end == p || a < 0 || a >= MAX_NODES) return errno = EINVAL, -1;
    long b = a;
    if (*end == '-') {
      p = end + 1;
      b = strtol(p, &end, 10);
      if (end == p || b < a || b >= MAX_NODES) return errno = EINVAL, -1;
    }
    for (long n = a; n <= b; n++) mask[(size_t)n / bits] |= 1UL << ((size_t)n % bits);
    if (*end == ',') end++;
    else if (*end != '\0') return errno = EINVAL, -1;
    p = end;
  }
  /* maxnode counts one more than the bits the kernel is to read (it drops the last one) */
  return (int)syscall(SYS_set_mempolicy, mode, mask, (unsigned long)MAX_NODES + 1);
}

static int cmd_exec(int argc, char **argv) {
  const char *cpus = NULL;
  const char *mems = NULL;
  const char *join[MAX_LIST];
  int njoin = 0;
  const char *mntns = NULL;
  const char *label = "the program";
  const char *argv0 = NULL;
  int i = 0;
  for (; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) {
      i++;
      break;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "tsmpiexec-helper: exec: %s needs a value\n", argv[i]);
      return 2;
    }
    if (strcmp(argv[i], "--join") == 0) {
      if (njoin == MAX_LIST) {
        fprintf(stderr, "tsmpiexec-helper: exec: more than %d --join\n", MAX_LIST);
        return 2;
      }
      join[njoin++] = argv[++i];
    }
    else if (strcmp(argv[i], "--mntns") == 0) mntns = argv[++i];
    else if (strcmp(argv[i], "--label") == 0) label = argv[++i];
    else if (strcmp(argv[i], "--cpus") == 0) cpus = argv[++i];
    else if (strcmp(argv[i], "--mems") == 0) mems = argv[++i];
    else if (strcmp(argv[i], "--argv0") == 0) argv0 = argv[++i];
    else {
      fprintf(stderr, "tsmpiexec-helper: exec: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (i >= argc) {
    fprintf(stderr, "tsmpiexec-helper: exec: no program after --\n");
    return 2;
  }
  for (int j = 0; j < njoin; j++) {
    if (joined_already(join[j])) continue;
    if (join_cgroup(join[j]) < 0) die(126, "tsmpiexec: %s cannot join cgroup %s", label, join[j]);
  }
  if (mntns != NULL) {
    /* The directory is opened before setns, so a working directory under the host's /tmp survives. */
    int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    int ns = open(mntns, O_RDONLY | O_CLOEXEC);
    if (ns < 0 || setns(ns, CLONE_NEWNS) < 0) die(126, "tsmpiexec: %s cannot enter the job's private /tmp (%s)", label, mntns);
    close(ns);
    if (cwd >= 0) {
      if (fchdir(cwd) < 0) die(126, "tsmpiexec: %s cannot keep its working directory", label);
      close(cwd);
    }
  }
  if (cpus != NULL) {
    cpu_set_t set;
    if (parse_cpus(cpus, &set) < 0) die(126, "tsmpiexec: %s: bad CPU list %s", label, cpus);
    if (sched_setaffinity(0, sizeof set, &set) < 0) die(126, "tsmpiexec: %s cannot be bound to CPUs %s", label, cpus);
  }
  if (mems != NULL && set_mems(mems) < 0) die(126, "tsmpiexec: %s cannot set the memory policy %s", label, mems);
  /* The program's argv[0] as the user typed it (./a.out), as mpiexec passes it; the file is still PROGRAM.
   * In a batch child argv is the helper's spec (shared with the parent until exec): only this slot changes. */
  const char *file = argv[i];
  if (argv0 != NULL) argv[i] = (char *)argv0;
  execvp(file, &argv[i]);
  if (child_errno_fd >= 0) {
    /* the proxy reports it as a rank that could not be started, as when Node's spawn() fails */
    int e = errno != 0 ? errno : ENOEXEC;
    if (write(child_errno_fd, &e, sizeof e) < 0) _exit(127);
    _exit(127);
  }
  die(errno == ENOENT ? 127 : 126, "tsmpiexec: %s: cannot run %s", label, file);
}

/* mkdir for a directory entry, an empty file otherwise: the mount point a host entry is bound back onto. */
static int make_mount_point(const char *path, int is_dir) {
  if (is_dir) return mkdir(path, 0700) < 0 && errno != EEXIST ? -1 : 0;
  int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  close(fd);
  return 0;
}

static int cmd_holder(int argc, char **argv) {
  const char *data = NULL, *tmp_name = NULL, *shm_name = NULL, *tmp_source = NULL;
  const char *keep[MAX_LIST];
  int nkeep = 0;
  for (int i = 0; i < argc; i++) {
    if (i + 1 >= argc) {
      fprintf(stderr, "tsmpiexec-helper: holder: %s needs a value\n", argv[i]);
      return 2;
    }
    const char *v = argv[++i];
    if (strcmp(argv[i - 1], "--data") == 0) data = v;
    else if (strcmp(argv[i - 1], "--tmp-name") == 0) tmp_name = v;
    else if (strcmp(argv[i - 1], "--shm-name") == 0) shm_name = v;
    else if (strcmp(argv[i - 1], "--tmp-source") == 0) tmp_source = v;
    else if (strcmp(argv[i - 1], "--keep") == 0) {
      if (nkeep == MAX_LIST) {
        fprintf(stderr, "tsmpiexec-helper: holder: more than %d --keep\n", MAX_LIST);
        return 2;
      }
      keep[nkeep++] = v;
    }
    else {
      fprintf(stderr, "tsmpiexec-helper: holder: unknown option %s\n", argv[i - 1]);
      return 2;
    }
  }
  if (data == NULL || tmp_name == NULL || shm_name == NULL) {
    fprintf(stderr, "tsmpiexec-helper: holder: --data, --tmp-name and --shm-name are required\n");
    return 2;
  }
  pid_t parent = getppid();
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) die(1, "tsmpiexec-helper: pdeathsig");
  if (getppid() != parent) return 1; /* the parent died before pdeathsig was armed */
  if (unshare(CLONE_NEWNS) < 0) die(1, "tsmpiexec-helper: unshare");
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) die(1, "tsmpiexec-helper: make / private");
  /* Host entries are opened before the tmpfs hides them, and bound back through /proc/self/fd/N. Opened in the
     new namespace: a bind source must be a mount of the caller's own namespace (EINVAL otherwise). */
  int keep_fd[MAX_LIST];
  int keep_dir[MAX_LIST];
  for (int k = 0; k < nkeep; k++) {
    struct stat st;
    keep_fd[k] = open(keep[k], O_PATH | O_CLOEXEC);
    if (keep_fd[k] < 0 || fstat(keep_fd[k], &st) < 0) die(1, "tsmpiexec-helper: cannot open %s", keep[k]);
    keep_dir[k] = S_ISDIR(st.st_mode);
  }
  if (tmp_source != NULL) {
    if (mount(tmp_source, "/tmp", NULL, MS_BIND, NULL) < 0) die(1, "tsmpiexec-helper: bind %s on /tmp", tmp_source);
  } else if (mount(tmp_name, "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, data) < 0) {
    die(1, "tsmpiexec-helper: mount a tmpfs on /tmp");
  }
  if (mount(shm_name, "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, data) < 0) die(1, "tsmpiexec-helper: mount a tmpfs on /dev/shm");
  for (int k = 0; k < nkeep; k++) {
    char src[64];
    snprintf(src, sizeof src, "/proc/self/fd/%d", keep_fd[k]);
    if (make_mount_point(keep[k], keep_dir[k]) < 0) die(1, "tsmpiexec-helper: cannot recreate %s", keep[k]);
    if (mount(src, keep[k], NULL, MS_BIND, NULL) < 0) die(1, "tsmpiexec-helper: bind %s back", keep[k]);
    close(keep_fd[k]);
  }
  if (write_all(STDOUT_FILENO, "ready\n", 6) < 0) return 1;
  /* The namespace lives as long as we do: until the proxy kills us, or dies (pdeathsig). */
  for (;;) pause();
}

/* ---- batch: start many ranks with one fork of the launcher ------------------------------------------------ */

#define BATCH_MAX 256

struct rank_spec {
  char **argv;
  char **envp;
  const char *cwd;
};

static char *read_all(int fd, size_t *len) {
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  if (buf == NULL) return NULL;
  for (;;) {
    if (n == cap) {
      char *more = realloc(buf, cap *= 2);
      if (more == NULL) {
        free(buf);
        return NULL;
      }
      buf = more;
    }
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      free(buf);
      return NULL;
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  *len = n;
  return buf;
}

/* The next NUL-terminated token of the request, or NULL at its end. */
static char *token(char *buf, size_t len, size_t *pos) {
  if (*pos >= len) return NULL;
  char *t = buf + *pos;
  char *end = memchr(t, '\0', len - *pos);
  if (end == NULL) return NULL;
  *pos = (size_t)(end - buf) + 1;
  return t;
}

static long count(char *buf, size_t len, size_t *pos, long max) {
  char *t = token(buf, len, pos);
  if (t == NULL || *t == '\0') return -1;
  char *end;
  long v = strtol(t, &end, 10);
  return *end != '\0' || v < 0 || v > max ? -1 : v;
}

static char **strings(char *buf, size_t len, size_t *pos, long n) {
  char **v = calloc((size_t)n + 1, sizeof *v);
  if (v == NULL) return NULL;
  for (long i = 0; i < n; i++) {
    if ((v[i] = token(buf, len, pos)) == NULL) return NULL;
  }
  return v;
}

static const int IGNORED[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE};

static void out_line(const char *line) {
  if (write_all(STDOUT_FILENO, line, strlen(line)) < 0) {
    /* the proxy is gone: keep reaping, the ranks are being killed */
  }
}

/*
 * In the rank's vfork child: default signal dispositions, then the mask the parent
 * blocked for us (a signal already sent arrives now, with its default effect), own session, fds, cwd,
 * environment, then the program, or the isolation wrapper's `SELF exec` steps without another exec. Only system
 * calls and the helper's own code: nothing here writes memory the parent reads afterwards (environ: the parent
 * never uses it again). A failed exec is told through `errfd`, a close-on-exec pipe: an exec closes it unwritten.
 */
static __attribute__((noreturn)) void start_rank(const struct rank_spec *r, int first_fd, const char *self, int errfd) {
  child_errno_fd = errfd;
  for (size_t k = 0; k < sizeof IGNORED / sizeof IGNORED[0]; k++) signal(IGNORED[k], SIG_DFL);
  setsid();
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  int devnull = open("/dev/null", O_RDONLY);
  if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(first_fd, 1) < 0 || dup2(first_fd + 1, 2) < 0 || dup2(first_fd + 2, 3) < 0) _exit(126);
  /* Every other descriptor (other ranks' sockets, the request pipe) is the launcher's business, not the rank's;
     the errno pipe closes itself at exec. */
  if (errfd < 4 || close_range(4, (unsigned)errfd - 1, 0) < 0 || close_range((unsigned)errfd + 1, ~0U, 0) < 0) {
    for (int fd = 4; fd <= devnull || fd < 3 + 3 * BATCH_MAX + 8; fd++) {
      if (fd != errfd) close(fd);
    }
  }
  if (chdir(r->cwd) < 0) die(126, "tsmpiexec: cannot change to the working directory %s", r->cwd);
  environ = r->envp;
  int argc = 0;
  while (r->argv[argc] != NULL) argc++;
  if (argc >= 2 && strcmp(r->argv[0], self) == 0 && strcmp(r->argv[1], "exec") == 0) _exit(cmd_exec(argc - 2, r->argv + 2));
  execvp(r->argv[0], r->argv);
  int e = errno != 0 ? errno : ENOEXEC;
  if (write(errfd, &e, sizeof e) < 0) _exit(127);
  _exit(127);
}

/* The cgroup.procs files a rank's wrapper (`SELF exec --join FILE ...`) joins, or 0 for another program. */
static int wrapper_joins(const struct rank_spec *r, const char *self, const char **out) {
  int n = 0;
  if (r->argv[0] == NULL || strcmp(r->argv[0], self) != 0 || r->argv[1] == NULL || strcmp(r->argv[1], "exec") != 0) return 0;
  for (char **a = r->argv + 2; a[0] != NULL && strcmp(a[0], "--") != 0; a++) {
    if (strcmp(a[0], "--join") == 0 && a[1] != NULL && n < MAX_LIST) out[n++] = a[1];
    if (a[1] != NULL) a++;
  }
  return n;
}

/*
 * Its own frame, so the vfork child (which never returns) shares no live local of the caller's.
 * Not clone3(CLONE_INTO_CGROUP): without CLONE_VM (which needs a stack of its own and assembly to use) that child
 * is a copy of the helper, and on the 2-CPU test host 1024 such clones took 1.37-1.52 s against 1.01-1.31 s for
 * vfork and a write to cgroup.procs (vfork alone 0.97-1.12 s): the copy costs more than the migration it saves.
 */
static __attribute__((noinline)) pid_t spawn_rank(const struct rank_spec *r, int first_fd, const char *self, int errfd) {
  pid_t pid = vfork();
  if (pid == 0) start_rank(r, first_fd, self, errfd);
  return pid;
}

/*
 * tsmpiexec-helper batch SELF: reads K rank specs from stdin ("K\0", then per rank "ARGC\0" ARGV... "ENVC\0"
 * ENV... "CWD\0"), finds rank i's stdout, stderr and PMI socket at fds 3+3i, 4+3i, 5+3i (the launcher made
 * them), starts every rank in its own session with those at 1, 2, 3 and /dev/null at 0, prints "p I PID" for
 * each once it has exec'd, or "f I ERRNO" if it could not be started, then "x I STATUS READ WRITE" (the raw wait
 * status, and the bytes the rank and the children it waited for read from and wrote to storage, from wait4's
 * rusage) as each ends, and exits when all have. SELF is this helper's path: a rank whose argv is
 * `SELF exec ...` (the isolation wrapper) runs that step in the forked child itself.
 *
 * Cgroups: a cgroup.procs file (not on cgroup2) that every rank of the batch joins, the job's cgroup of a
 * hierarchy where ranks have none of their own, is joined once by the helper itself before the first fork, and
 * the ranks are born in it: a migration less per rank. The helper never joins a cgroup2 (kill) cgroup, so
 * killing the job never kills the helper, which reports the ranks' ends.
 */
static int cmd_batch(int argc, char **argv) {
  if (argc != 1) {
    fprintf(stderr, "tsmpiexec-helper: batch: usage: batch SELF\n");
    return 2;
  }
  const char *self = argv[0];
  pid_t parent = getppid();
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) return 1;
  for (size_t k = 0; k < sizeof IGNORED / sizeof IGNORED[0]; k++) signal(IGNORED[k], SIG_IGN);
  size_t len = 0, pos = 0;
  char *buf = read_all(STDIN_FILENO, &len);
  if (buf == NULL) die(1, "tsmpiexec-helper: batch: cannot read the request");
  long k = count(buf, len, &pos, BATCH_MAX);
  if (k < 0) {
    fprintf(stderr, "tsmpiexec-helper: batch: malformed request\n");
    return 2;
  }
  struct rank_spec *spec = calloc((size_t)k + 1, sizeof *spec);
  pid_t *pids = calloc((size_t)k + 1, sizeof *pids);
  if (spec == NULL || pids == NULL) die(1, "tsmpiexec-helper: batch");
  for (long i = 0; i < k; i++) {
    long na = count(buf, len, &pos, 1L << 20);
    if (na < 1 || (spec[i].argv = strings(buf, len, &pos, na)) == NULL) goto malformed;
    long ne = count(buf, len, &pos, 1L << 20);
    if (ne < 0 || (spec[i].envp = strings(buf, len, &pos, ne)) == NULL) goto malformed;
    if ((spec[i].cwd = token(buf, len, &pos)) == NULL) goto malformed;
  }
  /* The v1 job cgroups every rank joins: joined here once (a failure only leaves each rank to join it). One rank
     alone tells nothing: its file may be its own cgroup, which must not count the helper. */
  int ninherited = 0;
  if (k > 1) {
    const char *first[MAX_LIST];
    int nfirst = wrapper_joins(&spec[0], self, first);
    for (int j = 0; j < nfirst; j++) {
      int everyone = 1;
      for (long i = 1; i < k && everyone; i++) {
        const char *mine[MAX_LIST];
        int n = wrapper_joins(&spec[i], self, mine);
        everyone = 0;
        for (int m = 0; m < n; m++) {
          if (strcmp(mine[m], first[j]) == 0) everyone = 1;
        }
      }
      if (!everyone || nskip_join == MAX_LIST) continue;
      char dir[4096];
      snprintf(dir, sizeof dir, "%s", first[j]);
      char *slash = strrchr(dir, '/');
      struct statfs sf;
      if (slash != NULL) *slash = '\0';
      if (slash == NULL || statfs(dir, &sf) < 0 || sf.f_type == 0x63677270) continue;
      if (join_cgroup(first[j]) == 0) skip_join[nskip_join++] = first[j];
    }
    ninherited = nskip_join;
  }
  char line[96];
  long running = 0;
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  for (long i = 0; i < k; i++) {
    int first = 3 + 3 * (int)i;
    int errpipe[2];
    if (pipe2(errpipe, O_CLOEXEC) < 0) die(1, "tsmpiexec-helper: batch: pipe");
    /* vfork: we go on only once the rank has exec'd (or failed), so when the proxy reads "p I PID"
       the rank is its own session leader and `kill -PID` reaches it, as after Node's spawn(). Signals stay
       blocked until the child has reset their dispositions. */
    sigprocmask(SIG_SETMASK, &all, NULL);
    pid_t pid = spawn_rank(&spec[i], first, self, errpipe[1]);
    int fork_errno = errno;
    sigprocmask(SIG_SETMASK, &none, NULL);
    close(errpipe[1]);
    int exec_errno = 0;
    if (pid > 0) {
      ssize_t got;
      do got = read(errpipe[0], &exec_errno, sizeof exec_errno);
      while (got < 0 && errno == EINTR);
      if (got != (ssize_t)sizeof exec_errno) exec_errno = 0;
    }
    close(errpipe[0]);
    if (pid > 0 && exec_errno != 0) {
      /* the program could not be exec'd: "f I ERRNO", as for a failed fork, and the child is reaped here */
      waitpid(pid, NULL, 0);
      snprintf(line, sizeof line, "f %ld %d\n", i, exec_errno);
      out_line(line);
    } else if (pid < 0) {
      snprintf(line, sizeof line, "f %ld %d\n", i, fork_errno);
      out_line(line);
    } else {
      pids[i] = pid;
      running++;
      snprintf(line, sizeof line, "p %ld %ld\n", i, (long)pid);
      out_line(line);
    }
    close(first);
    close(first + 1);
    close(first + 2);
  }
  /* Back to the cgroup we came from (the job's parent: src/isolate/plan.ts makes the job's cgroup a child of the
     proxy's own), so the job's cgroups can be removed the moment the last rank is gone. */
  for (int j = 0; j < ninherited; j++) {
    char up[4096];
    snprintf(up, sizeof up, "%s", skip_join[j]);
    for (int cut = 0; cut < 2; cut++) {
      char *slash = strrchr(up, '/');
      if (slash != NULL) *slash = '\0';
    }
    if (strlen(up) + sizeof "/cgroup.procs" < sizeof up) {
      strcat(up, "/cgroup.procs");
      if (join_cgroup(up) < 0) {
        /* we stay until we exit; the proxy's cleanup retries the removal */
      }
    }
  }
  while (running > 0) {
    int status;
    struct rusage ru;
    pid_t pid = wait4(-1, &status, 0, &ru);
    if (pid < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (long i = 0; i < k; i++) {
      if (pids[i] == pid) {
        /* ru_inblock/ru_oublock count 512-byte units of the task's storage I/O (Linux's read_bytes, write_bytes) */
        snprintf(line, sizeof line, "x %ld %d %lld %lld\n", i, status, (long long)ru.ru_inblock * 512, (long long)ru.ru_oublock * 512);
        out_line(line);
        running--;
        break;
      }
    }
  }
  return 0;
malformed:
  fprintf(stderr, "tsmpiexec-helper: batch: malformed request\n");
  return 2;
}

static int cmd_pipe_size(int argc, char **argv) {
  char *end = NULL;
  long want = argc == 1 ? strtol(argv[0], &end, 10) : -1;
  if (argc != 1 || *end != '\0' || want <= 0 || want > (1L << 30)) {
    fprintf(stderr, "tsmpiexec-helper: pipe-size: usage: pipe-size BYTES (1 to 1073741824)\n");
    return 2;
  }
  struct stat st;
  if (fstat(1, &st) != 0 || !S_ISFIFO(st.st_mode)) return 0;
  int have = fcntl(1, F_GETPIPE_SZ);
  if (have < 0) die(1, "tsmpiexec-helper: pipe-size: F_GETPIPE_SZ");
  if (have < want && fcntl(1, F_SETPIPE_SZ, (int)want) < 0) die(1, "tsmpiexec-helper: pipe-size: F_SETPIPE_SZ %ld", want);
  fprintf(stderr, "pipe-size %d\n", fcntl(1, F_GETPIPE_SZ));
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "exec") == 0) return cmd_exec(argc - 2, argv + 2);
  if (argc >= 2 && strcmp(argv[1], "holder") == 0) return cmd_holder(argc - 2, argv + 2);
  if (argc >= 2 && strcmp(argv[1], "batch") == 0) return cmd_batch(argc - 2, argv + 2);
  if (argc >= 2 && strcmp(argv[1], "pipe-size") == 0) return cmd_pipe_size(argc - 2, argv + 2);
  if (argc == 2 && strcmp(argv[1], "version") == 0) {
    puts("tsmpiexec-helper " HELPER_PROTOCOL);
    return 0;
  }
  fprintf(stderr, "usage: tsmpiexec-helper version | exec [--join FILE]... [--mntns PATH] [--cpus LIST] [--mems MODE:LIST] [--label TEXT] [--argv0 NAME] -- PROGRAM ARGS... | holder --data OPTS --tmp-name NAME --shm-name NAME [--tmp-source DIR] [--keep PATH]... | pipe-size BYTES\n");
  return 2;
}
