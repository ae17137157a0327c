/*
 * libtsmpiexec-pmi.so: the PMI-1 and PMI-2 C APIs over the PMI wire protocol (see tsmpiexec-pmi.h and
 * docs/pmi-library.md). Loaded into ranks by MPI libraries that have no wire client of their own.
 *
 * The server is found as MPICH's own client finds it: PMI_FD (an inherited connected socket), else PMI_PORT
 * (host:port over TCP, or unix:///path), else there is none and the process is a singleton (rank 0 of 1,
 * with a KVS of its own). Values the wire cannot carry (spaces, '=', ';', newlines, ...) are sent as "%$"
 * followed by the value with those bytes (and '%') written as %XX, and decoded on the way back.
 * Only libc. One request at a time (a mutex), so threads may share the library.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tsmpiexec-pmi.h"

#define API __attribute__((visibility("default")))

/* A v1 line is at most this long (MPICH's clients use 1024): value limits are derived from it. */
#define LINE_BUDGET 1024
#define KVSNAME_MAX 256
#define ENC_PREFIX "%$"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static struct {
    int version; /* 0: not initialized, 1: PMI-1, 2: PMI-2 */
    int fd;      /* -1: singleton */
    int rank, size, appnum, spawned, debug;
    char kvsname[KVSNAME_MAX];
    int kvsname_max, keylen_max, vallen_max; /* as the server said */
    int wire_vallen;                         /* the longest encoded value we send */
    char *buf;                               /* bytes read and not yet used */
    size_t len, cap;
    int *clique;
    int nclique;
    struct local_kv { char *key, *val; struct local_kv *next; } *local; /* singleton KVS */
} S = { .fd = -1 };

static void trace(const char *dir, const char *text, size_t n) {
    if (!S.debug) return;
    while (n > 0 && (text[n - 1] == '\n')) n--;
    fprintf(stderr, "tsmpiexec-pmi: rank %d %s %.*s\n", S.rank, dir, (int)n, text);
}

/* ---------------------------------------------------------------------------------------------- bytes */

static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Read more bytes into S.buf; -1 on EOF or error. */
static int fill(void) {
    if (S.cap - S.len < 4096) {
        size_t cap = S.cap ? S.cap * 2 : 8192;
        char *b = realloc(S.buf, cap);
        if (!b) return -1;
        S.buf = b;
        S.cap = cap;
    }
    for (;;) {
        ssize_t r = read(S.fd, S.buf + S.len, S.cap - S.len);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        S.len += (size_t)r;
        return 0;
    }
}

/* Take n bytes off the front of S.buf into a fresh NUL-terminated string. */
static char *take(size_t n, size_t skip) {
    char *s = malloc(n + 1);
    if (!s) return NULL;
    memcpy(s, S.buf, n);
    s[n] = '\0';
    memmove(S.buf, S.buf + n + skip, S.len - n - skip);
    S.len -= n + skip;
    return s;
}

/* One v1 reply line, without its newline (malloc'd), or NULL. */
static char *read_line(void) {
    for (;;) {
        char *nl = S.len ? memchr(S.buf, '\n', S.len) : NULL;
        if (nl) {
            char *s = take((size_t)(nl - S.buf), 1);
            if (s) trace("<", s, strlen(s));
            return s;
        }
        if (fill() < 0) return NULL;
    }
}

/* One v2 message body (malloc'd), or NULL: a 6-character length, then that many bytes. */
static char *read_v2(void) {
    while (S.len < 6)
        if (fill() < 0) return NULL;
    char hdr[7];
    memcpy(hdr, S.buf, 6);
    hdr[6] = '\0';
    long n = strtol(hdr, NULL, 10);
    if (n < 0 || n > (1 << 24)) return NULL;
    while (S.len < 6 + (size_t)n)
        if (fill() < 0) return NULL;
    memmove(S.buf, S.buf + 6, S.len - 6);
    S.len -= 6;
    char *s = take((size_t)n, 0);
    if (s) trace("<", s, strlen(s));
    return s;
}

static int send_line(const char *line) {
    trace(">", line, strlen(line));
    return write_all(S.fd, line, strlen(line));
}

static int send_v2(const char *body) {
    size_t n = strlen(body);
    char hdr[24];
    if (n > 999999) return -1; /* the length field has six digits */
    snprintf(hdr, sizeof hdr, "%6u", (unsigned)n);
    trace(">", body, n);
    if (write_all(S.fd, hdr, 6) < 0) return -1;
    return write_all(S.fd, body, n);
}

/* ---------------------------------------------------------------------------------------------- fields */

/* The value of key in a v1 line ("k=v k=v") or v2 body ("k=v;k=v;"), copied into out; 0 if found. */
static int field(const char *msg, const char *key, char sep, char *out, size_t outlen) {
    size_t kl = strlen(key);
    const char *p = msg;
    while (*p) {
        while (*p == sep) p++;
        const char *end = strchr(p, sep);
        if (!end) end = p + strlen(p);
        if ((size_t)(end - p) > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
            size_t vl = (size_t)(end - p) - kl - 1;
            if (vl + 1 > outlen) return -2;
            memcpy(out, p + kl + 1, vl);
            out[vl] = '\0';
            return 0;
        }
        p = end;
    }
    return -1;
}

static int field_int(const char *msg, const char *key, char sep, int *out) {
    char v[32];
    if (field(msg, key, sep, v, sizeof v) != 0) return -1;
    char *e;
    long n = strtol(v, &e, 10);
    if (e == v) return -1;
    *out = (int)n;
    return 0;
}

/* A reply without rc= is a success: Hydra leaves rc out of most PMI-1 replies. */
static int rc_ok(const char *msg, char sep) {
    int rc;
    return field_int(msg, "rc", sep, &rc) != 0 || rc == 0;
}

/* ---------------------------------------------------------------------------------------------- encoding */

static int needs_escape(unsigned char c) {
    return c <= 0x20 || c >= 0x7f || c == '=' || c == ';' || c == '%' || c == '\\';
}

/* The wire form of a value (malloc'd): itself, or "%$" and the value with awkward bytes as %XX. */
static char *encode(const char *v) {
    size_t n = strlen(v), extra = 0;
    int plain = !(n >= 2 && v[0] == '%' && v[1] == '$');
    for (size_t i = 0; i < n; i++)
        if (needs_escape((unsigned char)v[i])) {
            plain = 0;
            extra += 2;
        }
    if (plain) return strdup(v);
    char *out = malloc(n + extra + 3);
    if (!out) return NULL;
    char *o = out;
    *o++ = '%';
    *o++ = '$';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (needs_escape(c)) o += sprintf(o, "%%%02X", c);
        else *o++ = (char)c;
    }
    *o = '\0';
    return out;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Decode a wire value in place (a value without the prefix is returned as it is). */
static void decode(char *v) {
    if (!(v[0] == '%' && v[1] == '$')) return;
    char *o = v;
    for (const char *p = v + 2; *p; p++) {
        int h, l;
        if (*p == '%' && (h = hexval(p[1])) >= 0 && (l = hexval(p[2])) >= 0) {
            *o++ = (char)(h * 16 + l);
            p += 2;
        } else *o++ = *p;
    }
    *o = '\0';
}

static int bad_key(const char *key) {
    if (!key || !*key) return 1;
    for (const char *p = key; *p; p++)
        if (needs_escape((unsigned char)*p) && *p != '%') return 1;
    return 0;
}

/* ---------------------------------------------------------------------------------------------- connect */

static int connect_port(const char *port) {
    if (strncmp(port, "unix://", 7) == 0) {
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        if (strlen(port + 7) >= sizeof a.sun_path) return -1;
        strcpy(a.sun_path, port + 7);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) return -1;
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) return fd;
        close(fd);
        return -1;
    }
    const char *colon = strrchr(port, ':');
    if (!colon || colon == port) return -1;
    char host[256];
    size_t hl = (size_t)(colon - port);
    if (hl >= sizeof host) return -1;
    memcpy(host, port, hl);
    host[hl] = '\0';
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0) return -1;
    int fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static int env_int(const char *name, int dflt) {
    const char *v = getenv(name);
    return v && *v ? atoi(v) : dflt;
}

/* Connect to the server (or decide there is none). 0, or -1 when PMI_FD/PMI_PORT name one we cannot reach. */
static int attach(void) {
    const char *dbg = getenv("TSMPIEXEC_PMI_DEBUG");
    S.debug = dbg && *dbg && strcmp(dbg, "0") != 0;
    S.rank = env_int("PMI_RANK", 0);
    S.size = env_int("PMI_SIZE", 1);
    S.spawned = env_int("PMI_SPAWNED", 0) != 0;
    S.appnum = 0;
    const char *fdv = getenv("PMI_FD"), *port = getenv("PMI_PORT");
    if (fdv && *fdv) {
        S.fd = atoi(fdv);
        return 0;
    }
    if (port && *port) {
        S.fd = connect_port(port);
        return S.fd < 0 ? -1 : 0;
    }
    S.fd = -1;
    return 0;
}

/* ---------------------------------------------------------------------------------------------- PMI-1 */

/* Send a request on the v1 (line) or v2 (length-prefixed) wire and read its reply (malloc'd), or NULL. */
static char *vask(int wire, const char *fmt, va_list ap) {
    char msg[LINE_BUDGET * 4];
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    if (n < 0 || (size_t)n >= sizeof msg) return NULL;
    if (wire == 1) return send_line(msg) < 0 ? NULL : read_line();
    return send_v2(msg) < 0 ? NULL : read_v2();
}

/* A v1 request and its reply line. Caller holds mu. */
static char *v1(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *r = vask(1, fmt, ap);
    va_end(ap);
    return r;
}

/* A v2 request (printf-style body) and its reply body. Caller holds mu. */
static char *v2(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *r = vask(2, fmt, ap);
    va_end(ap);
    return r;
}

/* A request whose reply says only whether it worked: takes mu, PMI_SUCCESS (= PMI2_SUCCESS) or PMI_FAIL. */
static int ask_ok(int wire, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&mu);
    char *r = vask(wire, fmt, ap);
    int rc = r && rc_ok(r, wire == 1 ? ' ' : ';') ? PMI_SUCCESS : PMI_FAIL;
    pthread_mutex_unlock(&mu);
    va_end(ap);
    free(r);
    return rc;
}

static void set_limits(int kvsname_max, int keylen_max, int vallen_max) {
    S.kvsname_max = kvsname_max > 0 ? kvsname_max : KVSNAME_MAX;
    S.keylen_max = keylen_max > 0 ? keylen_max : 64;
    S.vallen_max = vallen_max > 0 ? vallen_max : 1024;
    int v = S.vallen_max;
    int k = S.keylen_max < 256 ? S.keylen_max : 256;
    if (S.kvsname_max + S.keylen_max + v + 30 > LINE_BUDGET) v = LINE_BUDGET - S.kvsname_max - k - 30;
    if (v < 64) v = 64;
    S.wire_vallen = v;
}

static int v1_init(void) {
    char *r;
    const char *id = getenv("PMI_ID");
    if (getenv("PMI_FD") == NULL && id && *id) {
        /* PMI_PORT: the server learns who we are, then tells us size and rank in three set lines */
        char line[128];
        snprintf(line, sizeof line, "cmd=initack pmiid=%s\n", id);
        if (send_line(line) < 0 || !(r = read_line())) return PMI_FAIL;
        free(r);
        for (int i = 0; i < 3; i++) {
            if (!(r = read_line())) return PMI_FAIL;
            int v;
            if (field_int(r, "size", ' ', &v) == 0) S.size = v;
            if (field_int(r, "rank", ' ', &v) == 0) S.rank = v;
            free(r);
        }
    }
    if (!(r = v1("cmd=init pmi_version=1 pmi_subversion=1\n"))) return PMI_FAIL;
    int ok = rc_ok(r, ' ');
    free(r);
    if (!ok) return PMI_FAIL;
    if (!(r = v1("cmd=get_maxes\n"))) return PMI_FAIL;
    int a = 0, b = 0, c = 0;
    field_int(r, "kvsname_max", ' ', &a);
    field_int(r, "keylen_max", ' ', &b);
    field_int(r, "vallen_max", ' ', &c);
    free(r);
    set_limits(a, b, c);
    if (!(r = v1("cmd=get_appnum\n"))) return PMI_FAIL;
    field_int(r, "appnum", ' ', &S.appnum);
    free(r);
    if (!(r = v1("cmd=get_my_kvsname\n"))) return PMI_FAIL;
    ok = field(r, "kvsname", ' ', S.kvsname, sizeof S.kvsname) == 0;
    free(r);
    return ok ? PMI_SUCCESS : PMI_FAIL;
}

API int PMI_Init(int *spawned) {
    pthread_mutex_lock(&mu);
    int rc = PMI_SUCCESS;
    if (S.version == 0) {
        if (attach() < 0) rc = PMI_FAIL;
        else if (S.fd < 0) {
            set_limits(KVSNAME_MAX, 64, 1024);
            snprintf(S.kvsname, sizeof S.kvsname, "singleton_kvs_%d", (int)getpid());
            S.rank = 0;
            S.size = 1;
        } else rc = v1_init();
        if (rc == PMI_SUCCESS) S.version = 1;
    }
    if (rc == PMI_SUCCESS && spawned) *spawned = S.spawned;
    pthread_mutex_unlock(&mu);
    return rc;
}

API int PMI_Initialized(int *initialized) {
    if (!initialized) return PMI_ERR_INVALID_ARG;
    *initialized = S.version != 0 ? PMI_TRUE : PMI_FALSE;
    return PMI_SUCCESS;
}

static void reset(void) {
    if (S.fd >= 0) close(S.fd);
    S.fd = -1;
    S.version = 0;
    free(S.buf);
    S.buf = NULL;
    S.len = S.cap = 0;
    free(S.clique);
    S.clique = NULL;
    S.nclique = 0;
    while (S.local) {
        struct local_kv *n = S.local->next;
        free(S.local->key);
        free(S.local->val);
        free(S.local);
        S.local = n;
    }
}

API int PMI_Finalize(void) {
    pthread_mutex_lock(&mu);
    int rc = PMI_SUCCESS;
    if (S.version == 1 && S.fd >= 0) {
        char *r = v1("cmd=finalize\n");
        if (!r) rc = PMI_FAIL;
        free(r);
    }
    if (S.version == 1) reset();
    pthread_mutex_unlock(&mu);
    return rc;
}

/* After asking the server to end the job, wait a little for it to do so, then leave with the code. */
static void abort_wait(int code) {
    if (S.fd >= 0) {
        struct pollfd p = { .fd = S.fd, .events = POLLIN };
        for (int i = 0; i < 50; i++) {
            if (poll(&p, 1, 100) > 0) {
                char b[256];
                if (read(S.fd, b, sizeof b) <= 0) break;
            }
        }
    }
    _exit(code);
}

API int PMI_Abort(int exit_code, const char *error_msg) {
    pthread_mutex_lock(&mu);
    if (S.version == 0 && attach() < 0) S.fd = -1;
    if (S.fd >= 0) {
        char line[512], *msg = encode(error_msg ? error_msg : "");
        /* the message is informational: keep it short and on one line */
        if (msg && strlen(msg) > 200) msg[200] = '\0';
        snprintf(line, sizeof line, "cmd=abort exitcode=%d message=%s\n", exit_code, msg ? msg : "");
        free(msg);
        send_line(line);
    } else if (error_msg && *error_msg) fprintf(stderr, "%s\n", error_msg);
    abort_wait(exit_code);
    return PMI_FAIL;
}

static int need1(void) { return S.version == 1 ? PMI_SUCCESS : PMI_ERR_INIT; }

API int PMI_Get_size(int *size) {
    if (!size) return PMI_ERR_INVALID_ARG;
    if (S.version == 0) return PMI_ERR_INIT;
    *size = S.size;
    return PMI_SUCCESS;
}

API int PMI_Get_rank(int *rank) {
    if (!rank) return PMI_ERR_INVALID_ARG;
    if (S.version == 0) return PMI_ERR_INIT;
    *rank = S.rank;
    return PMI_SUCCESS;
}

API int PMI_Get_appnum(int *appnum) {
    if (!appnum) return PMI_ERR_INVALID_ARG;
    if (S.version == 0) return PMI_ERR_INIT;
    *appnum = S.appnum;
    return PMI_SUCCESS;
}

API int PMI_Get_universe_size(int *size) {
    if (!size) return PMI_ERR_INVALID_ARG;
    if (need1() != PMI_SUCCESS) return PMI_ERR_INIT;
    if (S.fd < 0) {
        *size = 1;
        return PMI_SUCCESS;
    }
    pthread_mutex_lock(&mu);
    char *r = v1("cmd=get_universe_size\n");
    int rc = r && rc_ok(r, ' ') && field_int(r, "size", ' ', size) == 0 ? PMI_SUCCESS : PMI_FAIL;
    free(r);
    pthread_mutex_unlock(&mu);
    return rc;
}

/* PMI-1 get on the wire, decoded into a malloc'd string; NULL when absent. Caller holds mu. */
static char *get1(const char *kvsname, const char *key) {
    if (S.fd < 0) {
        for (struct local_kv *k = S.local; k; k = k->next)
            if (strcmp(k->key, key) == 0) return strdup(k->val);
        return NULL;
    }
    char *r = v1("cmd=get kvsname=%s key=%s\n", kvsname, key);
    if (!r) return NULL;
    char *val = NULL;
    if (rc_ok(r, ' ')) {
        const char *p = strstr(r, " value=");
        if (p) {
            p += 7;
            size_t n = strcspn(p, " ");
            val = strndup(p, n);
            if (val) decode(val);
        }
    }
    free(r);
    return val;
}

/* The ranks on this node, from PMI_process_mapping "(vector,(node,count,ppn),...)"; caller holds mu. */
static void parse_mapping(const char *m) {
    int blocks[256][3], nb = 0;
    const char *p = strstr(m, "vector");
    if (!p) return;
    p += 6;
    while (nb < 256 && (p = strchr(p, '('))) {
        int a, b, c;
        if (sscanf(p, "(%d,%d,%d)", &a, &b, &c) != 3 || b < 1 || c < 1) return;
        blocks[nb][0] = a;
        blocks[nb][1] = b;
        blocks[nb][2] = c;
        nb++;
        p++;
    }
    if (nb == 0 || S.size < 1) return;
    int *node = malloc(sizeof(int) * (size_t)S.size);
    if (!node) return;
    int r = 0;
    while (r < S.size) {
        for (int i = 0; i < nb && r < S.size; i++)
            for (int n = 0; n < blocks[i][1] && r < S.size; n++)
                for (int k = 0; k < blocks[i][2] && r < S.size; k++) node[r++] = blocks[i][0] + n;
    }
    int mine = S.rank >= 0 && S.rank < S.size ? node[S.rank] : -1, count = 0;
    for (int i = 0; i < S.size; i++) count += node[i] == mine;
    S.clique = malloc(sizeof(int) * (size_t)(count ? count : 1));
    if (S.clique) {
        S.nclique = 0;
        for (int i = 0; i < S.size; i++)
            if (node[i] == mine) S.clique[S.nclique++] = i;
    }
    free(node);
}

static void clique(void) {
    if (S.clique) return;
    char *m = NULL;
    if (S.fd >= 0 && S.version == 1) m = get1(S.kvsname, "PMI_process_mapping");
    if (S.fd >= 0 && S.version == 2) {
        char *r = v2("cmd=info-getjobattr;key=PMI_process_mapping;");
        char v[LINE_BUDGET * 4];
        if (r && field(r, "value", ';', v, sizeof v) == 0) m = strdup(v);
        free(r);
    }
    if (m) parse_mapping(m);
    free(m);
    if (!S.clique) {
        S.clique = malloc(sizeof(int));
        if (S.clique) {
            S.clique[0] = S.rank;
            S.nclique = 1;
        }
    }
}

API int PMI_Get_clique_size(int *size) {
    if (!size) return PMI_ERR_INVALID_ARG;
    if (S.version == 0) return PMI_ERR_INIT;
    pthread_mutex_lock(&mu);
    clique();
    *size = S.nclique;
    pthread_mutex_unlock(&mu);
    return S.clique ? PMI_SUCCESS : PMI_ERR_NOMEM;
}

API int PMI_Get_clique_ranks(int ranks[], int length) {
    if (!ranks) return PMI_ERR_INVALID_ARG;
    if (S.version == 0) return PMI_ERR_INIT;
    pthread_mutex_lock(&mu);
    clique();
    int rc = PMI_SUCCESS;
    if (!S.clique) rc = PMI_ERR_NOMEM;
    else if (length < S.nclique) rc = PMI_ERR_INVALID_LENGTH;
    else memcpy(ranks, S.clique, sizeof(int) * (size_t)S.nclique);
    pthread_mutex_unlock(&mu);
    return rc;
}

API int PMI_KVS_Get_my_name(char *kvsname, int length) {
    if (!kvsname) return PMI_ERR_INVALID_ARG;
    if (S.version == 0) return PMI_ERR_INIT;
    if ((int)strlen(S.kvsname) + 1 > length) return PMI_ERR_INVALID_LENGTH;
    strcpy(kvsname, S.kvsname);
    return PMI_SUCCESS;
}

API int PMI_Get_id(char *id_str, int length) { return PMI_KVS_Get_my_name(id_str, length); }
API int PMI_Get_kvs_domain_id(char *id_str, int length) { return PMI_KVS_Get_my_name(id_str, length); }

API int PMI_KVS_Get_name_length_max(int *length) {
    if (!length) return PMI_ERR_INVALID_ARG;
    if (S.version == 0) return PMI_ERR_INIT;
    *length = S.kvsname_max;
    return PMI_SUCCESS;
}

API int PMI_Get_id_length_max(int *length) { return PMI_KVS_Get_name_length_max(length); }

API int PMI_KVS_Get_key_length_max(int *length) {
    if (!length) return PMI_ERR_INVALID_ARG;
    if (S.version == 0) return PMI_ERR_INIT;
    *length = S.keylen_max;
    return PMI_SUCCESS;
}

/* The longest value that fits the wire whatever its bytes (each may become three). */
static int raw_vallen(void) { return (S.wire_vallen - 2) / 3; }

API int PMI_KVS_Get_value_length_max(int *length) {
    if (!length) return PMI_ERR_INVALID_ARG;
    if (S.version == 0) return PMI_ERR_INIT;
    *length = raw_vallen();
    return PMI_SUCCESS;
}

/* Shared by PMI_KVS_Put and PMI2_KVS_Put: checks, encodes and sends (or stores locally). Caller holds mu. */
static int put(const char *kvsname, const char *key, const char *value) {
    if (bad_key(key) || (int)strlen(key) >= S.keylen_max) return PMI_ERR_INVALID_KEY;
    if (!value) return PMI_ERR_INVALID_VAL;
    char *enc = encode(value);
    if (!enc) return PMI_ERR_NOMEM;
    if ((int)strlen(enc) > S.wire_vallen) {
        free(enc);
        return PMI_ERR_INVALID_VAL_LENGTH;
    }
    int rc = PMI_FAIL;
    if (S.fd < 0) {
        struct local_kv *k = malloc(sizeof *k);
        if (k && (k->key = strdup(key)) && (k->val = strdup(value))) {
            k->next = S.local;
            S.local = k;
            rc = PMI_SUCCESS;
        } else free(k);
    } else if (S.version == 1) {
        char *r = v1("cmd=put kvsname=%s key=%s value=%s\n", kvsname, key, enc);
        rc = r && rc_ok(r, ' ') ? PMI_SUCCESS : PMI_FAIL;
        free(r);
    } else {
        size_t n = strlen(key) + strlen(enc) + 40;
        char *body = malloc(n);
        if (body) {
            snprintf(body, n, "cmd=kvs-put;key=%s;value=%s;", key, enc);
            char *r = send_v2(body) == 0 ? read_v2() : NULL;
            rc = r && rc_ok(r, ';') ? PMI2_SUCCESS : PMI2_FAIL;
            free(r);
            free(body);
        }
    }
    free(enc);
    return rc;
}

API int PMI_KVS_Put(const char *kvsname, const char *key, const char *value) {
    if (need1() != PMI_SUCCESS) return PMI_ERR_INIT;
    if (!kvsname) return PMI_ERR_INVALID_ARG;
    pthread_mutex_lock(&mu);
    int rc = put(kvsname, key, value);
    pthread_mutex_unlock(&mu);
    return rc;
}

API int PMI_KVS_Commit(const char *kvsname) {
    (void)kvsname;
    return need1() == PMI_SUCCESS ? PMI_SUCCESS : PMI_ERR_INIT;
}

API int PMI_KVS_Get(const char *kvsname, const char *key, char *value, int length) {
    if (need1() != PMI_SUCCESS) return PMI_ERR_INIT;
    if (!kvsname || !value) return PMI_ERR_INVALID_ARG;
    if (bad_key(key)) return PMI_ERR_INVALID_KEY;
    pthread_mutex_lock(&mu);
    char *v = get1(kvsname, key);
    int rc = PMI_FAIL;
    if (v && (int)strlen(v) + 1 > length) rc = PMI_ERR_INVALID_LENGTH;
    else if (v) {
        strcpy(value, v);
        rc = PMI_SUCCESS;
    }
    free(v);
    pthread_mutex_unlock(&mu);
    return rc;
}

API int PMI_Barrier(void) {
    if (need1() != PMI_SUCCESS) return PMI_ERR_INIT;
    if (S.fd < 0) return PMI_SUCCESS;
    return ask_ok(1, "cmd=barrier_in\n");
}

static int name_ok(const char *s) { return s && *s && !bad_key(s); }

API int PMI_Publish_name(const char *service_name, const char *port) {
    if (need1() != PMI_SUCCESS) return PMI_ERR_INIT;
    if (!name_ok(service_name) || !port || strpbrk(port, " \n=;")) return PMI_ERR_INVALID_ARG;
    if (S.fd < 0) return PMI_FAIL;
    return ask_ok(1, "cmd=publish_name service=%s port=%s\n", service_name, port);
}

API int PMI_Unpublish_name(const char *service_name) {
    if (need1() != PMI_SUCCESS) return PMI_ERR_INIT;
    if (!name_ok(service_name)) return PMI_ERR_INVALID_ARG;
    if (S.fd < 0) return PMI_FAIL;
    return ask_ok(1, "cmd=unpublish_name service=%s\n", service_name);
}

API int PMI_Lookup_name(const char *service_name, char *port) {
    if (need1() != PMI_SUCCESS) return PMI_ERR_INIT;
    if (!name_ok(service_name) || !port) return PMI_ERR_INVALID_ARG;
    if (S.fd < 0) return PMI_FAIL;
    pthread_mutex_lock(&mu);
    char *r = v1("cmd=lookup_name service=%s\n", service_name);
    /* MPICH's callers give a buffer of 256 bytes */
    int rc = r && rc_ok(r, ' ') && field(r, "port", ' ', port, 256) == 0 ? PMI_SUCCESS : PMI_FAIL;
    free(r);
    pthread_mutex_unlock(&mu);
    return rc;
}

API int PMI_Spawn_multiple(int count, const char *cmds[], const char **argvs[], const int maxprocs[],
                           const int info_keyval_sizes[], const PMI_keyval_t *info_keyval_vectors[],
                           int preput_keyval_size, const PMI_keyval_t preput_keyval_vector[], int errors[]) {
    (void)count, (void)cmds, (void)argvs, (void)maxprocs, (void)info_keyval_sizes, (void)info_keyval_vectors;
    (void)preput_keyval_size, (void)preput_keyval_vector, (void)errors;
    return PMI_FAIL; /* not offered by this library */
}

/* ---------------------------------------------------------------------------------------------- PMI-2 */

API int PMI2_Init(int *spawned, int *size, int *rank, int *appnum) {
    pthread_mutex_lock(&mu);
    int rc = PMI2_SUCCESS;
    if (S.version == 0) {
        if (attach() < 0) rc = PMI2_FAIL;
        else if (S.fd < 0) {
            set_limits(KVSNAME_MAX, PMI2_MAX_KEYLEN, PMI2_MAX_VALLEN);
            snprintf(S.kvsname, sizeof S.kvsname, "singleton_kvs_%d", (int)getpid());
            S.rank = 0;
            S.size = 1;
        } else {
            set_limits(KVSNAME_MAX, PMI2_MAX_KEYLEN, PMI2_MAX_VALLEN);
            char *r = NULL;
            rc = PMI2_FAIL;
            if (send_line("cmd=init pmi_version=2 pmi_subversion=0\n") == 0 && (r = read_line()) && rc_ok(r, ' ')) {
                free(r);
                const char *id = getenv("PMI_ID");
                int who = id && *id ? atoi(id) : S.rank;
                r = v2("cmd=fullinit;pmirank=%d;threaded=FALSE;", who);
                char jobid[KVSNAME_MAX];
                if (r && rc_ok(r, ';') && field_int(r, "rank", ';', &S.rank) == 0 && field_int(r, "size", ';', &S.size) == 0) {
                    field_int(r, "appnum", ';', &S.appnum);
                    S.spawned = field(r, "spawner-jobid", ';', jobid, sizeof jobid) == 0 && jobid[0] != '\0';
                    free(r);
                    r = v2("cmd=job-getid;");
                    if (r && rc_ok(r, ';') && field(r, "jobid", ';', S.kvsname, sizeof S.kvsname) == 0) rc = PMI2_SUCCESS;
                }
            }
            free(r);
        }
        if (rc == PMI2_SUCCESS) S.version = 2;
    }
    if (rc == PMI2_SUCCESS) {
        if (spawned) *spawned = S.spawned;
        if (size) *size = S.size;
        if (rank) *rank = S.rank;
        if (appnum) *appnum = S.appnum;
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

API int PMI2_Initialized(void) { return S.version == 2; }

API int PMI2_Finalize(void) {
    pthread_mutex_lock(&mu);
    int rc = PMI2_SUCCESS;
    if (S.version == 2 && S.fd >= 0) {
        char *r = v2("cmd=finalize;");
        if (!r || !rc_ok(r, ';')) rc = PMI2_FAIL;
        free(r);
    }
    if (S.version == 2) reset();
    pthread_mutex_unlock(&mu);
    return rc;
}

API int PMI2_Abort(int flag, const char msg[]) {
    (void)flag;
    pthread_mutex_lock(&mu);
    if (S.version == 0 && attach() < 0) S.fd = -1;
    if (S.fd >= 0) {
        char *m = encode(msg ? msg : "");
        if (m && strlen(m) > 200) m[200] = '\0';
        char body[512];
        snprintf(body, sizeof body, "cmd=abort;isworld=%s;msg=%s;", flag ? "TRUE" : "FALSE", m ? m : "");
        free(m);
        send_v2(body);
    } else if (msg && *msg) fprintf(stderr, "%s\n", msg);
    abort_wait(1);
    return PMI2_FAIL;
}

API int PMI2_Job_GetId(char jobid[], int jobid_size) {
    if (S.version != 2) return PMI2_ERR_INIT;
    if (!jobid) return PMI2_ERR_INVALID_ARG;
    if ((int)strlen(S.kvsname) + 1 > jobid_size) return PMI2_ERR_INVALID_LENGTH;
    strcpy(jobid, S.kvsname);
    return PMI2_SUCCESS;
}

API int PMI2_KVS_Put(const char key[], const char value[]) {
    if (S.version != 2) return PMI2_ERR_INIT;
    pthread_mutex_lock(&mu);
    int rc = put(S.kvsname, key, value);
    pthread_mutex_unlock(&mu);
    return rc;
}

API int PMI2_KVS_Fence(void) {
    if (S.version != 2) return PMI2_ERR_INIT;
    if (S.fd < 0) return PMI2_SUCCESS;
    return ask_ok(2, "cmd=kvs-fence;");
}

/* A v2 reply's found/value into the caller's buffer: PMI2 status. */
static int found_value(char *r, char value[], int maxvalue, int *vallen, int *found) {
    char f[8];
    if (!r || !rc_ok(r, ';')) return PMI2_FAIL;
    int is = field(r, "found", ';', f, sizeof f) == 0 && strcmp(f, "TRUE") == 0;
    if (found) *found = is;
    if (!is) return found ? PMI2_SUCCESS : PMI2_FAIL;
    char *v = malloc(strlen(r) + 1);
    if (!v) return PMI2_ERR_NOMEM;
    if (field(r, "value", ';', v, strlen(r) + 1) != 0) v[0] = '\0';
    decode(v);
    int n = (int)strlen(v), rc = PMI2_SUCCESS;
    if (vallen) *vallen = n;
    if (n + 1 > maxvalue) {
        rc = PMI2_ERR_INVALID_LENGTH;
        if (vallen) *vallen = -n; /* the MPICH convention: a negative length says the value was cut */
    } else memcpy(value, v, (size_t)n + 1);
    free(v);
    return rc;
}

API int PMI2_KVS_Get(const char *jobid, int src_pmi_id, const char key[], char value[], int maxvalue, int *vallen) {
    if (S.version != 2) return PMI2_ERR_INIT;
    if (!value || bad_key(key)) return PMI2_ERR_INVALID_ARG;
    pthread_mutex_lock(&mu);
    int rc;
    if (S.fd < 0) {
        char *v = get1(S.kvsname, key);
        rc = !v ? PMI2_FAIL : (int)strlen(v) + 1 > maxvalue ? PMI2_ERR_INVALID_LENGTH : PMI2_SUCCESS;
        if (v && rc == PMI2_SUCCESS) strcpy(value, v);
        if (v && vallen) *vallen = (int)strlen(v);
        free(v);
    } else {
        char *r = v2("cmd=kvs-get;jobid=%s;srcid=%d;key=%s;", jobid ? jobid : "", src_pmi_id, key);
        rc = found_value(r, value, maxvalue, vallen, NULL);
        free(r);
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

API int PMI2_Info_GetJobAttr(const char name[], char value[], int valuelen, int *found) {
    if (S.version != 2) return PMI2_ERR_INIT;
    if (!value || !found || bad_key(name)) return PMI2_ERR_INVALID_ARG;
    if (S.fd < 0) {
        *found = 0;
        return PMI2_SUCCESS;
    }
    pthread_mutex_lock(&mu);
    char *r = v2("cmd=info-getjobattr;key=%s;", name);
    int rc = found_value(r, value, valuelen, NULL, found);
    free(r);
    pthread_mutex_unlock(&mu);
    return rc;
}

API int PMI2_Info_GetNodeAttr(const char name[], char value[], int valuelen, int *found, int waitfor) {
    if (S.version != 2) return PMI2_ERR_INIT;
    if (!value || !found || bad_key(name)) return PMI2_ERR_INVALID_ARG;
    if (S.fd < 0) {
        *found = 0;
        return PMI2_SUCCESS;
    }
    pthread_mutex_lock(&mu);
    char *r = v2("cmd=info-getnodeattr;key=%s;wait=%s;", name, waitfor ? "TRUE" : "FALSE");
    int rc = found_value(r, value, valuelen, NULL, found);
    free(r);
    pthread_mutex_unlock(&mu);
    return rc;
}

API int PMI2_Info_PutNodeAttr(const char name[], const char value[]) {
    if (S.version != 2) return PMI2_ERR_INIT;
    if (!value || bad_key(name)) return PMI2_ERR_INVALID_ARG;
    if (S.fd < 0) return PMI2_SUCCESS;
    char *enc = encode(value);
    if (!enc) return PMI2_ERR_NOMEM;
    int rc = (int)strlen(enc) > S.wire_vallen ? PMI2_ERR_INVALID_VAL_LENGTH : ask_ok(2, "cmd=info-putnodeattr;key=%s;value=%s;", name, enc);
    free(enc);
    return rc;
}

API int PMI2_Nameserv_publish(const char service_name[], const void *info_ptr, const char port[]) {
    (void)info_ptr;
    if (S.version != 2) return PMI2_ERR_INIT;
    if (!name_ok(service_name) || !port || strpbrk(port, " \n=;")) return PMI2_ERR_INVALID_ARG;
    if (S.fd < 0) return PMI2_FAIL;
    return ask_ok(2, "cmd=name-publish;name=%s;port=%s;", service_name, port);
}

API int PMI2_Nameserv_lookup(const char service_name[], const void *info_ptr, char port[], int portLen) {
    (void)info_ptr;
    if (S.version != 2) return PMI2_ERR_INIT;
    if (!name_ok(service_name) || !port || portLen < 1) return PMI2_ERR_INVALID_ARG;
    if (S.fd < 0) return PMI2_FAIL;
    pthread_mutex_lock(&mu);
    char *r = v2("cmd=name-lookup;name=%s;", service_name);
    int rc = r && rc_ok(r, ';') && field(r, "port", ';', port, (size_t)portLen) == 0 ? PMI2_SUCCESS : PMI2_FAIL;
    free(r);
    pthread_mutex_unlock(&mu);
    return rc;
}

API int PMI2_Nameserv_unpublish(const char service_name[], const void *info_ptr) {
    (void)info_ptr;
    if (S.version != 2) return PMI2_ERR_INIT;
    if (!name_ok(service_name)) return PMI2_ERR_INVALID_ARG;
    if (S.fd < 0) return PMI2_FAIL;
    return ask_ok(2, "cmd=name-unpublish;name=%s;", service_name);
}
