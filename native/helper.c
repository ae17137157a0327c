/*
 * tsmpiexec-helper: an optional accelerator for isolation on Linux. Everything it does has a portable
 * fallback in src/isolate (sh, nsenter, setpriv, unshare, mount); it only does the same in one exec instead of
 * three to six, which is most of isolation's start-up cost (bench/README.md). `make build` compiles it when a C
 * compiler is present; without it tsmpiexec works the same, just slower. It is never installed setuid: it runs
 * as the job's owner with the owner's rights, like the shell recipe it replaces.
 *
 *   tsmpiexec-helper version
 *   tsmpiexec-helper exec [--join FILE]... [--mntns PATH] [--label TEXT] -- PROGRAM ARGS...
 *       Write our own pid into each cgroup.procs FILE (before exec, so not even the program's first fork can
 *       escape), enter the mount namespace at PATH keeping the current directory, then exec PROGRAM.
 *   tsmpiexec-helper holder --data OPTS --tmp-name NAME --shm-name NAME [--tmp-source DIR] [--keep PATH]...
 *       Die with the parent (pdeathsig), make a private mount namespace with a tmpfs on /tmp (or DIR bound
 *       there) and one on /dev/shm, bind each host entry PATH back over them, print "ready" and wait.
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
#include <sys/stat.h>
#include <unistd.h>

#define HELPER_PROTOCOL "1"
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
  exit(code);
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

static int cmd_exec(int argc, char **argv) {
  const char *join[MAX_LIST];
  int njoin = 0;
  const char *mntns = NULL;
  const char *label = "the program";
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
  execvp(argv[i], &argv[i]);
  die(errno == ENOENT ? 127 : 126, "tsmpiexec: %s: cannot run %s", label, argv[i]);
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

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "exec") == 0) return cmd_exec(argc - 2, argv + 2);
  if (argc >= 2 && strcmp(argv[1], "holder") == 0) return cmd_holder(argc - 2, argv + 2);
  if (argc == 2 && strcmp(argv[1], "version") == 0) {
    puts("tsmpiexec-helper " HELPER_PROTOCOL);
    return 0;
  }
  fprintf(stderr, "usage: tsmpiexec-helper version | exec [--join FILE]... [--mntns PATH] [--label TEXT] -- PROGRAM ARGS... | holder --data OPTS --tmp-name NAME --shm-name NAME [--tmp-source DIR] [--keep PATH]...\n");
  return 2;
}
