/*
 * tsmpiexec-pmix-server: one host's PMIx server for one job, built on libpmix (docs/pmix.md).
 *
 * The host proxy (src/pmix/helper.ts) starts it for a job whose ranks speak PMIx (Open MPI 4's ext3x), with the
 * job's map on the command line, and talks to it over its stdin and stdout, one line per message (the words
 * are separated by one space; anything that is not a plain number or name travels base64-encoded, '-' standing
 * for an empty value). The helper registers the job and this host's ranks with libpmix, hands the proxy each
 * rank's PMIx environment, and turns libpmix's upcalls (fence, abort, connect/finalize, publish/lookup) into
 * lines for the proxy, which answers them through the controller. End of stdin: finalize, remove, exit 0.
 *
 * usage: tsmpiexec-pmix-server TMPDIR NSPACE NODEID UNIVSIZE NODES PROCMAP APPNUMS
 *   NODES    node names, comma-separated, in node-id order
 *   PROCMAP  the ranks of each node: ranks comma-separated, nodes separated by ';' (PMIx_generate_ppn's input)
 *   APPNUMS  the appnum of every rank, comma-separated, in rank order
 *
 * Out (helper -> proxy): ENV rank b64(NUL-separated K=V) | READY | FENCE seq b64 | CONNECTED rank |
 *   FINALIZED rank | ABORT rank status b64(message) | PUBLISH id b64(key) b64(value) ... |
 *   LOOKUP id b64(key) ... | UNPUBLISH id b64(key) ... | SPAWN id rank b64(cmd) maxprocs ... | FAIL b64(message)
 * In (proxy -> helper): FENCED seq ok|fail b64(host blob) ... | DONE id ok|dup|notfound|fail |
 *   FOUND id ok b64(key) b64(value) ... | FOUND id notfound | SPAWNED id ok nspace | SPAWNED id fail b64(why)
 *
 * The PMIx server listens on loopback TCP (libpmix 4 has no other transport). Its rendezvous files live in
 * TMPDIR, a 0700 directory the proxy made; and every connection it accepts is checked here first: accept() is
 * wrapped, and a peer whose socket another user owns (its row in /proc/net/tcp) is closed before libpmix reads
 * a byte, so nobody but the job's owner gets as far as PMIx's own credential check.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <pmix.h>
#include <pmix_server.h>

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t req_lock = PTHREAD_MUTEX_INITIALIZER;
static char nspace[PMIX_MAX_NSLEN + 1];

/* ---- base64 ---- */
static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *b64enc(const unsigned char *p, size_t n) {
  if (n == 0) return strdup("-");
  char *o = malloc(4 * ((n + 2) / 3) + 1), *q = o;
  if (!o) abort();
  for (size_t i = 0; i < n; i += 3) {
    unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
    *q++ = B64[v >> 18 & 63];
    *q++ = B64[v >> 12 & 63];
    *q++ = i + 1 < n ? B64[v >> 6 & 63] : '=';
    *q++ = i + 2 < n ? B64[v & 63] : '=';
  }
  *q = 0;
  return o;
}

static int b64val(int c) {
  const char *s = c ? strchr(B64, c) : NULL;
  return s ? (int)(s - B64) : -1;
}

/* Decodes in place-allocated memory; *n gets the length. "-" is empty. NULL on bad input. */
static unsigned char *b64dec(const char *s, size_t *n) {
  size_t len = strlen(s);
  unsigned char *o = malloc(len / 4 * 3 + 3);
  if (!o) abort();
  *n = 0;
  if (strcmp(s, "-") == 0) return o;
  if (len % 4 != 0) { free(o); return NULL; }
  for (size_t i = 0; i < len; i += 4) {
    int a = b64val(s[i]), b = b64val(s[i + 1]), c = s[i + 2] == '=' ? 0 : b64val(s[i + 2]), d = s[i + 3] == '=' ? 0 : b64val(s[i + 3]);
    if (a < 0 || b < 0 || c < 0 || d < 0) { free(o); return NULL; }
    unsigned v = (unsigned)a << 18 | (unsigned)b << 12 | (unsigned)c << 6 | (unsigned)d;
    o[(*n)++] = v >> 16 & 255;
    if (s[i + 2] != '=') o[(*n)++] = v >> 8 & 255;
    if (s[i + 3] != '=') o[(*n)++] = v & 255;
  }
  return o;
}

/* ---- lines out ---- */
static void say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  pthread_mutex_lock(&out_lock);
  vfprintf(stdout, fmt, ap);
  fputc('\n', stdout);
  fflush(stdout);
  pthread_mutex_unlock(&out_lock);
  va_end(ap);
}

static void fail(const char *what, pmix_status_t rc) {
  char msg[512];
  snprintf(msg, sizeof msg, "%s: %s", what, PMIx_Error_string(rc));
  char *e = b64enc((const unsigned char *)msg, strlen(msg));
  say("FAIL %s", e);
  free(e);
  exit(1);
}

/* ---- the peer check in front of libpmix's accept() ---- */

/* The uid owning the TCP socket whose local end is (addr, port), from /proc/net/tcp[6]; -1 if not found. */
static long tcp_owner(const struct sockaddr_storage *peer) {
  char want[64];
  const char *file;
  if (peer->ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)peer;
    snprintf(want, sizeof want, "%08X:%04X", (unsigned)a->sin_addr.s_addr, (unsigned)ntohs(a->sin_port));
    file = "/proc/net/tcp";
  } else if (peer->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)peer;
    const uint32_t *w = (const uint32_t *)&a->sin6_addr;
    snprintf(want, sizeof want, "%08X%08X%08X%08X:%04X", (unsigned)w[0], (unsigned)w[1], (unsigned)w[2], (unsigned)w[3], (unsigned)ntohs(a->sin6_port));
    file = "/proc/net/tcp6";
  } else {
    return -1;
  }
  FILE *f = fopen(file, "r");
  if (!f) return -1;
  char line[512];
  long uid = -1;
  while (fgets(line, sizeof line, f)) {
    char local[64];
    long u;
    /* sl local rem st tx:rx tr:when retrnsmt uid */
    if (sscanf(line, " %*s %63s %*s %*s %*s %*s %*s %ld", local, &u) == 2 && strcasecmp(local, want) == 0) {
      uid = u;
      break;
    }
  }
  fclose(f);
  return uid;
}

static int peer_is_owner(int fd) {
  struct sockaddr_storage peer;
  socklen_t len = sizeof peer;
  if (getpeername(fd, (struct sockaddr *)&peer, &len) != 0) return 0;
  if (peer.ss_family == AF_UNIX) {
    struct ucred cred;
    socklen_t cl = sizeof cred;
    return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0 && cred.uid == getuid();
  }
  /* the connection may not be listed the very instant it is accepted: look twice */
  for (int i = 0; i < 2; i++) {
    long uid = tcp_owner(&peer);
    if (uid >= 0) return uid == (long)getuid();
    usleep(1000);
  }
  return 0;
}

/* libpmix's listener calls accept(); this definition in the executable comes first. */
int accept(int fd, struct sockaddr *addr, socklen_t *len) {
  for (;;) {
    int c = (int)syscall(SYS_accept4, fd, addr, len, 0);
    if (c < 0) return c;
    if (peer_is_owner(c)) return c;
    close(c);
    errno = ECONNABORTED;
    return -1;
  }
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
  int c = (int)syscall(SYS_accept4, fd, addr, len, flags);
  if (c < 0 || peer_is_owner(c)) return c;
  close(c);
  errno = ECONNABORTED;
  return -1;
}

/* ---- requests waiting for the proxy's answer ---- */
typedef struct req {
  long id;
  int kind; /* 'F' fence, 'O' op (publish/unpublish), 'L' lookup, 'S' spawn */
  pmix_modex_cbfunc_t modex;
  pmix_spawn_cbfunc_t spawn;
  pmix_op_cbfunc_t op;
  pmix_lookup_cbfunc_t lookup;
  void *cbdata;
  struct req *next;
} req_t;

static req_t *reqs;
static long next_id = 1;
static long fence_seq = 0;

static long add_req(req_t *r) {
  pthread_mutex_lock(&req_lock);
  r->id = r->kind == 'F' ? ++fence_seq : next_id++;
  r->next = reqs;
  reqs = r;
  long id = r->id;
  pthread_mutex_unlock(&req_lock);
  return id;
}

static req_t *take_req(int kind, long id) {
  pthread_mutex_lock(&req_lock);
  req_t **p = &reqs;
  while (*p && !((*p)->kind == kind && (*p)->id == id)) p = &(*p)->next;
  req_t *r = *p;
  if (r) *p = r->next;
  pthread_mutex_unlock(&req_lock);
  return r;
}

/* ---- upcalls ---- */
static pmix_status_t on_connected(const pmix_proc_t *proc, void *obj, pmix_op_cbfunc_t cb, void *cbdata) {
  (void)obj; (void)cb; (void)cbdata;
  say("CONNECTED %u", proc->rank);
  return PMIX_OPERATION_SUCCEEDED;
}

static pmix_status_t on_finalized(const pmix_proc_t *proc, void *obj, pmix_op_cbfunc_t cb, void *cbdata) {
  (void)obj; (void)cb; (void)cbdata;
  say("FINALIZED %u", proc->rank);
  return PMIX_OPERATION_SUCCEEDED;
}

static pmix_status_t on_abort(const pmix_proc_t *proc, void *obj, int status, const char msg[], pmix_proc_t procs[], size_t nprocs,
                              pmix_op_cbfunc_t cb, void *cbdata) {
  (void)obj; (void)procs; (void)nprocs; (void)cb; (void)cbdata;
  const char *m = msg ? msg : "";
  char *e = b64enc((const unsigned char *)m, strlen(m));
  say("ABORT %u %d %s", proc->rank, status, e);
  free(e);
  return PMIX_OPERATION_SUCCEEDED;
}

static pmix_status_t on_fence(const pmix_proc_t procs[], size_t nprocs, const pmix_info_t info[], size_t ninfo, char *data, size_t ndata,
                              pmix_modex_cbfunc_t cb, void *cbdata) {
  (void)info; (void)ninfo;
  /* only fences over the whole job: a subset would wait at the controller for hosts that never come */
  for (size_t i = 0; i < nprocs; i++)
    if (strcmp(procs[i].nspace, nspace) != 0 || procs[i].rank != PMIX_RANK_WILDCARD) return PMIX_ERR_NOT_SUPPORTED;
  req_t *r = calloc(1, sizeof *r);
  if (!r) return PMIX_ERR_NOMEM;
  r->kind = 'F';
  r->modex = cb;
  r->cbdata = cbdata;
  char *e = b64enc((const unsigned char *)data, ndata);
  /* the line goes out under the same lock that numbers the fence, so the proxy sees them in order */
  pthread_mutex_lock(&out_lock);
  long id = add_req(r);
  fprintf(stdout, "FENCE %ld %s\n", id, e);
  fflush(stdout);
  pthread_mutex_unlock(&out_lock);
  free(e);
  return PMIX_SUCCESS;
}

static pmix_status_t on_dmodex(const pmix_proc_t *proc, const pmix_info_t info[], size_t ninfo, pmix_modex_cbfunc_t cb, void *cbdata) {
  (void)proc; (void)info; (void)ninfo; (void)cb; (void)cbdata;
  /* every rank's data comes with the fence (Open MPI asks it to collect everything) */
  return PMIX_ERR_NOT_SUPPORTED;
}

/* "VERB id b64 b64 ..." for the keys (and values) of a name-service request */
static char *grow(char *s, size_t *cap, size_t *len, const char *add) {
  size_t a = strlen(add);
  if (*len + a + 2 > *cap) {
    *cap = (*len + a + 2) * 2;
    s = realloc(s, *cap);
    if (!s) abort();
  }
  s[(*len)++] = ' ';
  memcpy(s + *len, add, a + 1);
  *len += a;
  return s;
}

static pmix_status_t on_publish(const pmix_proc_t *proc, const pmix_info_t info[], size_t ninfo, pmix_op_cbfunc_t cb, void *cbdata) {
  (void)proc;
  size_t cap = 256, len = 0;
  char *line = malloc(cap);
  if (!line) return PMIX_ERR_NOMEM;
  line[0] = 0;
  int pairs = 0;
  for (size_t i = 0; i < ninfo; i++) {
    if (strncmp(info[i].key, "pmix.", 5) == 0) continue; /* directives: range, persistence, timeout */
    if (info[i].value.type != PMIX_STRING) { free(line); return PMIX_ERR_NOT_SUPPORTED; }
    const char *v = info[i].value.data.string ? info[i].value.data.string : "";
    char *k64 = b64enc((const unsigned char *)info[i].key, strlen(info[i].key));
    char *v64 = b64enc((const unsigned char *)v, strlen(v));
    line = grow(line, &cap, &len, k64);
    line = grow(line, &cap, &len, v64);
    free(k64);
    free(v64);
    pairs++;
  }
  if (pairs == 0) { free(line); return PMIX_ERR_BAD_PARAM; }
  req_t *r = calloc(1, sizeof *r);
  if (!r) { free(line); return PMIX_ERR_NOMEM; }
  r->kind = 'O';
  r->op = cb;
  r->cbdata = cbdata;
  long id = add_req(r);
  say("PUBLISH %ld%s", id, line);
  free(line);
  return PMIX_SUCCESS;
}

static pmix_status_t keys_request(const char *verb, char **keys, req_t *r) {
  size_t cap = 256, len = 0;
  char *line = malloc(cap);
  if (!line) { free(r); return PMIX_ERR_NOMEM; }
  line[0] = 0;
  int n = 0;
  for (; keys && keys[n]; n++) {
    char *k64 = b64enc((const unsigned char *)keys[n], strlen(keys[n]));
    line = grow(line, &cap, &len, k64);
    free(k64);
  }
  if (n == 0) { free(line); free(r); return PMIX_ERR_BAD_PARAM; }
  long id = add_req(r);
  say("%s %ld%s", verb, id, line);
  free(line);
  return PMIX_SUCCESS;
}

static pmix_status_t on_lookup(const pmix_proc_t *proc, char **keys, const pmix_info_t info[], size_t ninfo, pmix_lookup_cbfunc_t cb, void *cbdata) {
  (void)proc; (void)info; (void)ninfo;
  req_t *r = calloc(1, sizeof *r);
  if (!r) return PMIX_ERR_NOMEM;
  r->kind = 'L';
  r->lookup = cb;
  r->cbdata = cbdata;
  return keys_request("LOOKUP", keys, r);
}

static pmix_status_t on_unpublish(const pmix_proc_t *proc, char **keys, const pmix_info_t info[], size_t ninfo, pmix_op_cbfunc_t cb, void *cbdata) {
  (void)proc; (void)info; (void)ninfo;
  req_t *r = calloc(1, sizeof *r);
  if (!r) return PMIX_ERR_NOMEM;
  r->kind = 'O';
  r->op = cb;
  r->cbdata = cbdata;
  return keys_request("UNPUBLISH", keys, r);
}

/* MPI_Comm_spawn: the apps (command and process count each) go to the proxy, which answers with the
 * children's namespace or a reason (docs/pmix.md: the proxy refuses for now, so the spawner gets an error
 * instead of a hang). */
static pmix_status_t on_spawn(const pmix_proc_t *proc, const pmix_info_t job_info[], size_t ninfo, const pmix_app_t apps[], size_t napps,
                              pmix_spawn_cbfunc_t cb, void *cbdata) {
  (void)job_info; (void)ninfo;
  if (napps == 0) return PMIX_ERR_BAD_PARAM;
  size_t cap = 256, len = 0;
  char *line = malloc(cap);
  if (!line) return PMIX_ERR_NOMEM;
  line[0] = 0;
  for (size_t i = 0; i < napps; i++) {
    const char *cmd = apps[i].cmd ? apps[i].cmd : "";
    char *c64 = b64enc((const unsigned char *)cmd, strlen(cmd));
    char num[32];
    snprintf(num, sizeof num, "%d", apps[i].maxprocs);
    line = grow(line, &cap, &len, c64);
    line = grow(line, &cap, &len, num);
    free(c64);
  }
  req_t *r = calloc(1, sizeof *r);
  if (!r) { free(line); return PMIX_ERR_NOMEM; }
  r->kind = 'S';
  r->spawn = cb;
  r->cbdata = cbdata;
  long id = add_req(r);
  say("SPAWN %ld %u%s", id, proc->rank, line);
  free(line);
  return PMIX_SUCCESS;
}

static pmix_server_module_t module = {
  .client_connected = on_connected,
  .client_finalized = on_finalized,
  .abort = on_abort,
  .fence_nb = on_fence,
  .direct_modex = on_dmodex,
  .publish = on_publish,
  .lookup = on_lookup,
  .unpublish = on_unpublish,
  .spawn = on_spawn,
};

/* ---- answers from the proxy ---- */
static void release_blob(void *p) { free(p); }

static pmix_status_t status_of(const char *w) {
  if (!w) return PMIX_ERROR;
  if (strcmp(w, "ok") == 0) return PMIX_SUCCESS;
  if (strcmp(w, "dup") == 0) return PMIX_ERR_DUPLICATE_KEY;
  if (strcmp(w, "notfound") == 0) return PMIX_ERR_NOT_FOUND;
  return PMIX_ERROR;
}

static void answer(char *line) {
  char *save = NULL;
  char *verb = strtok_r(line, " ", &save);
  char *ids = strtok_r(NULL, " ", &save);
  char *st = strtok_r(NULL, " ", &save);
  if (!verb || !ids) return;
  long id = strtol(ids, NULL, 10);
  if (strcmp(verb, "FENCED") == 0) {
    req_t *r = take_req('F', id);
    if (!r) return;
    pmix_status_t rc = status_of(st);
    unsigned char *all = malloc(1);
    size_t total = 0;
    for (char *w; rc == PMIX_SUCCESS && (w = strtok_r(NULL, " ", &save));) {
      size_t n;
      unsigned char *b = b64dec(w, &n);
      if (!b) { rc = PMIX_ERR_BAD_PARAM; break; }
      all = realloc(all, total + n + 1);
      if (!all) abort();
      memcpy(all + total, b, n);
      total += n;
      free(b);
    }
    if (rc != PMIX_SUCCESS) total = 0;
    r->modex(rc, (char *)all, total, r->cbdata, release_blob, all);
    free(r);
  } else if (strcmp(verb, "DONE") == 0) {
    req_t *r = take_req('O', id);
    if (!r) return;
    if (r->op) r->op(status_of(st), r->cbdata);
    free(r);
  } else if (strcmp(verb, "SPAWNED") == 0) {
    req_t *r = take_req('S', id);
    if (!r) return;
    char *ns = strtok_r(NULL, " ", &save);
    pmix_nspace_t child;
    PMIX_LOAD_NSPACE(child, st && strcmp(st, "ok") == 0 && ns ? ns : "");
    /* a refusal's reason was said to the user by the proxy; the spawner gets "not supported" */
    r->spawn(st && strcmp(st, "ok") == 0 && ns ? PMIX_SUCCESS : PMIX_ERR_NOT_SUPPORTED, child, r->cbdata);
    free(r);
  } else if (strcmp(verb, "FOUND") == 0) {
    req_t *r = take_req('L', id);
    if (!r) return;
    pmix_status_t rc = status_of(st);
    pmix_pdata_t *pd = NULL;
    size_t n = 0;
    if (rc == PMIX_SUCCESS) {
      char *words[512];
      size_t nw = 0;
      for (char *w; nw < 512 && (w = strtok_r(NULL, " ", &save));) words[nw++] = w;
      n = nw / 2;
      if (n > 0) PMIX_PDATA_CREATE(pd, n);
      for (size_t i = 0; i < n; i++) {
        size_t kl, vl;
        unsigned char *k = b64dec(words[2 * i], &kl), *v = b64dec(words[2 * i + 1], &vl);
        if (!k || !v) { rc = PMIX_ERR_BAD_PARAM; free(k); free(v); break; }
        k = realloc(k, kl + 1); k[kl] = 0;
        v = realloc(v, vl + 1); v[vl] = 0;
        PMIX_LOAD_PROCID(&pd[i].proc, nspace, PMIX_RANK_UNDEF);
        PMIX_LOAD_KEY(pd[i].key, (char *)k);
        pd[i].value.type = PMIX_STRING;
        pd[i].value.data.string = strdup((char *)v);
        free(k);
        free(v);
      }
      if (n == 0) rc = PMIX_ERR_NOT_FOUND;
    }
    r->lookup(rc, rc == PMIX_SUCCESS ? pd : NULL, rc == PMIX_SUCCESS ? n : 0, r->cbdata);
    if (pd) PMIX_PDATA_FREE(pd, n);
    free(r);
  }
}

/* ---- the job ---- */
static void op_done(pmix_status_t st, void *cbdata) {
  volatile int *flag = cbdata;
  *flag = st == PMIX_SUCCESS ? 1 : -1;
}

static void wait_flag(volatile int *flag) {
  while (*flag == 0) usleep(200);
}

/* split s at sep into a NULL-terminated array (s is modified) */
static char **split(char *s, const char *sep, size_t *n) {
  size_t cap = 16;
  char **v = malloc(cap * sizeof *v);
  char *save = NULL;
  *n = 0;
  for (char *w = strtok_r(s, sep, &save); w; w = strtok_r(NULL, sep, &save)) {
    if (*n + 2 > cap) v = realloc(v, (cap *= 2) * sizeof *v);
    v[(*n)++] = w;
  }
  v[*n] = NULL;
  return v;
}

int main(int argc, char **argv) {
  if (argc != 8) {
    fprintf(stderr, "usage: %s TMPDIR NSPACE NODEID UNIVSIZE NODES PROCMAP APPNUMS\n", argv[0]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  const char *tmpdir = argv[1];
  snprintf(nspace, sizeof nspace, "%s", argv[2]);
  uint32_t nodeid = (uint32_t)strtoul(argv[3], NULL, 10);
  uint32_t univ = (uint32_t)strtoul(argv[4], NULL, 10);
  char *nodes_arg = strdup(argv[5]), *map_arg = strdup(argv[6]), *map_copy = strdup(argv[6]), *app_arg = strdup(argv[7]);

  size_t nnodes, nmap, napps;
  char **nodes = split(nodes_arg, ",", &nnodes);
  char **per_node = split(map_arg, ";", &nmap);
  char **apps = split(app_arg, ",", &napps);
  if (nnodes == 0 || nmap != nnodes || nodeid >= nnodes) { fprintf(stderr, "pmix-server: bad node map\n"); return 2; }
  uint32_t size = (uint32_t)napps;
  /* node, local rank of every rank */
  uint32_t *node_of = calloc(size, sizeof *node_of);
  uint16_t *lrank_of = calloc(size, sizeof *lrank_of);
  char *local_peers = NULL;
  uint32_t local_size = 0;
  pmix_rank_t local_leader = PMIX_RANK_UNDEF;
  for (size_t i = 0; i < nnodes; i++) {
    char *copy = strdup(per_node[i]);
    size_t nr;
    char **ranks = split(copy, ",", &nr);
    for (size_t j = 0; j < nr; j++) {
      unsigned long r = strtoul(ranks[j], NULL, 10);
      if (r >= size) { fprintf(stderr, "pmix-server: rank %lu outside the job\n", r); return 2; }
      node_of[r] = (uint32_t)i;
      lrank_of[r] = (uint16_t)j;
      if (i == nodeid && j == 0) local_leader = (pmix_rank_t)r;
    }
    if (i == nodeid) {
      local_size = (uint32_t)nr;
      local_peers = strdup(per_node[i]);
    }
    free(ranks);
    free(copy);
  }

  /* the server */
  pmix_info_t *sinfo;
  size_t nsinfo = 5;
  PMIX_INFO_CREATE(sinfo, nsinfo);
  PMIX_INFO_LOAD(&sinfo[0], PMIX_SERVER_TMPDIR, tmpdir, PMIX_STRING);
  PMIX_INFO_LOAD(&sinfo[1], PMIX_SYSTEM_TMPDIR, tmpdir, PMIX_STRING);
  bool no = false;
  PMIX_INFO_LOAD(&sinfo[2], PMIX_SERVER_TOOL_SUPPORT, &no, PMIX_BOOL);
  PMIX_INFO_LOAD(&sinfo[3], PMIX_SERVER_SYSTEM_SUPPORT, &no, PMIX_BOOL);
  PMIX_INFO_LOAD(&sinfo[4], PMIX_HOSTNAME, nodes[nodeid], PMIX_STRING);
  pmix_status_t rc = PMIx_server_init(&module, sinfo, nsinfo);
  if (rc != PMIX_SUCCESS) fail("PMIx_server_init", rc);

  /* the job */
  char *node_regex = NULL, *proc_regex = NULL;
  char *nodes_csv = strdup(argv[5]);
  if ((rc = PMIx_generate_regex(nodes_csv, &node_regex)) != PMIX_SUCCESS) fail("PMIx_generate_regex", rc);
  if ((rc = PMIx_generate_ppn(map_copy, &proc_regex)) != PMIX_SUCCESS) fail("PMIx_generate_ppn", rc);

  size_t ninfo = 13 + size, k = 0;
  pmix_info_t *info;
  PMIX_INFO_CREATE(info, ninfo);
  uint32_t nn = (uint32_t)nnodes, zero = 0;
  PMIX_INFO_LOAD(&info[k++], PMIX_UNIV_SIZE, &univ, PMIX_UINT32);
  PMIX_INFO_LOAD(&info[k++], PMIX_JOB_SIZE, &size, PMIX_UINT32);
  PMIX_INFO_LOAD(&info[k++], PMIX_MAX_PROCS, &univ, PMIX_UINT32);
  PMIX_INFO_LOAD(&info[k++], PMIX_JOBID, nspace, PMIX_STRING);
  PMIX_INFO_LOAD(&info[k++], PMIX_NUM_NODES, &nn, PMIX_UINT32);
  PMIX_INFO_LOAD(&info[k++], PMIX_NODE_MAP, node_regex, PMIX_REGEX);
  PMIX_INFO_LOAD(&info[k++], PMIX_PROC_MAP, proc_regex, PMIX_REGEX);
  PMIX_INFO_LOAD(&info[k++], PMIX_LOCAL_SIZE, &local_size, PMIX_UINT32);
  PMIX_INFO_LOAD(&info[k++], PMIX_LOCAL_PEERS, local_peers, PMIX_STRING);
  PMIX_INFO_LOAD(&info[k++], PMIX_LOCALLDR, &local_leader, PMIX_PROC_RANK);
  PMIX_INFO_LOAD(&info[k++], PMIX_NODEID, &nodeid, PMIX_UINT32);
  PMIX_INFO_LOAD(&info[k++], PMIX_APPNUM, &zero, PMIX_UINT32);
  uint32_t napp_ctx = 1;
  for (uint32_t r = 0; r < size; r++) {
    uint32_t a = (uint32_t)strtoul(apps[r], NULL, 10);
    if (a + 1 > napp_ctx) napp_ctx = a + 1;
  }
  PMIX_INFO_LOAD(&info[k++], PMIX_JOB_NUM_APPS, &napp_ctx, PMIX_UINT32);
  /* every rank: its rank, appnum, node, local and node rank, host name */
  for (uint32_t r = 0; r < size; r++) {
    pmix_data_array_t *arr;
    size_t np = 7;
    PMIX_DATA_ARRAY_CREATE(arr, np, PMIX_INFO);
    pmix_info_t *pi = arr->array;
    pmix_rank_t rr = r;
    uint32_t app = (uint32_t)strtoul(apps[r], NULL, 10), nd = node_of[r];
    uint16_t lr = lrank_of[r];
    PMIX_INFO_LOAD(&pi[0], PMIX_RANK, &rr, PMIX_PROC_RANK);
    PMIX_INFO_LOAD(&pi[1], PMIX_APPNUM, &app, PMIX_UINT32);
    PMIX_INFO_LOAD(&pi[2], PMIX_LOCAL_RANK, &lr, PMIX_UINT16);
    PMIX_INFO_LOAD(&pi[3], PMIX_NODE_RANK, &lr, PMIX_UINT16);
    PMIX_INFO_LOAD(&pi[4], PMIX_NODEID, &nd, PMIX_UINT32);
    PMIX_INFO_LOAD(&pi[5], PMIX_HOSTNAME, nodes[nd], PMIX_STRING);
    PMIX_INFO_LOAD(&pi[6], PMIX_GLOBAL_RANK, &rr, PMIX_PROC_RANK);
    PMIX_INFO_LOAD(&info[k], PMIX_PROC_DATA, arr, PMIX_DATA_ARRAY);
    PMIX_DATA_ARRAY_FREE(arr);
    k++;
  }
  volatile int flag = 0;
  rc = PMIx_server_register_nspace(nspace, (int)local_size, info, k, op_done, (void *)&flag);
  if (rc != PMIX_SUCCESS) fail("PMIx_server_register_nspace", rc);
  wait_flag(&flag);
  if (flag < 0) fail("PMIx_server_register_nspace", PMIX_ERROR);

  /* this host's ranks, and the environment each one starts with */
  char *lp = strdup(local_peers);
  size_t nlocal;
  char **locals = split(lp, ",", &nlocal);
  for (size_t i = 0; i < nlocal; i++) {
    pmix_proc_t proc;
    PMIX_LOAD_PROCID(&proc, nspace, (pmix_rank_t)strtoul(locals[i], NULL, 10));
    flag = 0;
    rc = PMIx_server_register_client(&proc, getuid(), getgid(), NULL, op_done, (void *)&flag);
    if (rc != PMIX_SUCCESS) fail("PMIx_server_register_client", rc);
    wait_flag(&flag);
    if (flag < 0) fail("PMIx_server_register_client", PMIX_ERROR);
    char **env = calloc(1, sizeof *env);
    if ((rc = PMIx_server_setup_fork(&proc, &env)) != PMIX_SUCCESS) fail("PMIx_server_setup_fork", rc);
    size_t total = 0;
    for (char **e = env; *e; e++) total += strlen(*e) + 1;
    char *blob = malloc(total + 1), *q = blob;
    for (char **e = env; *e; e++) {
      size_t l = strlen(*e) + 1;
      memcpy(q, *e, l);
      q += l;
      free(*e);
    }
    free(env);
    char *e64 = b64enc((unsigned char *)blob, total);
    say("ENV %u %s", proc.rank, e64);
    free(e64);
    free(blob);
  }
  say("READY");

  /* answers until the proxy hangs up */
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  while ((n = getline(&line, &cap, stdin)) > 0) {
    if (line[n - 1] == '\n') line[n - 1] = 0;
    answer(line);
  }
  free(line);
  PMIx_server_finalize();
  return 0;
}
