/* A PMI-1 client with no MPI library: speaks the simple-PMI wire protocol itself over PMI_FD, so the
 * benchmark measures the launcher's PMI server and nothing else. The exchange (see pmi-wire.md):
 *   init, get_maxes, get_my_kvsname, put NKEYS keys, barrier,
 *   get NKEYS keys from each of NPEERS peers (ranks r+1 .. r+NPEERS mod size), barrier, finalize.
 * Every reply is checked (rc=0, the exact value a peer put); any mismatch exits 1 with a message on
 * stderr. Rank 0 prints one line "pmi-exchange ok size=<n> gets=<g>" when everything matched. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NKEYS 8
#define NPEERS 8
#define LINE_MAX_BYTES 4096

static int pmi_fd = -1;
static int my_rank = -1;
static char rbuf[LINE_MAX_BYTES * 2];
static size_t rlen = 0;

static void die(const char *what, const char *detail) {
    fprintf(stderr, "pmi_exchange[rank %d]: %s%s%s\n", my_rank, what, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

static void send_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#include <stdarg.h>
static void send_line(const char *fmt, ...) {
    char buf[LINE_MAX_BYTES];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= (int)sizeof buf - 1) die("request too long", NULL);
    buf[n++] = '\n';
    for (int off = 0; off < n;) {
        ssize_t w = write(pmi_fd, buf + off, (size_t)(n - off));
        if (w < 0) {
            if (errno == EINTR) continue;
            die("write to PMI_FD failed", strerror(errno));
        }
        off += (int)w;
    }
}

/* Reads one reply line (without the newline) into out. */
static void recv_line(char *out, size_t cap) {
    for (;;) {
        char *nl = memchr(rbuf, '\n', rlen);
        if (nl) {
            size_t len = (size_t)(nl - rbuf);
            if (len >= cap) die("reply too long", NULL);
            memcpy(out, rbuf, len);
            out[len] = '\0';
            rlen -= len + 1;
            memmove(rbuf, nl + 1, rlen);
            return;
        }
        if (rlen == sizeof rbuf) die("reply too long", NULL);
        ssize_t r = read(pmi_fd, rbuf + rlen, sizeof rbuf - rlen);
        if (r < 0) {
            if (errno == EINTR) continue;
            die("read from PMI_FD failed", strerror(errno));
        }
        if (r == 0) die("PMI server closed the connection", NULL);
        rlen += (size_t)r;
    }
}

/* The value of key in a reply line ("" if absent); tokens are space-separated key=value. */
static const char *field(const char *line, const char *key, char *out, size_t cap) {
    size_t kl = strlen(key);
    const char *p = line;
    out[0] = '\0';
    while (*p) {
        while (*p == ' ') p++;
        const char *end = strchr(p, ' ');
        if (!end) end = p + strlen(p);
        if ((size_t)(end - p) > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
            size_t vl = (size_t)(end - p) - kl - 1;
            if (vl >= cap) vl = cap - 1;
            memcpy(out, p + kl + 1, vl);
            out[vl] = '\0';
            return out;
        }
        p = end;
    }
    return out;
}

/* Receive a reply, check its cmd and that rc, when present, is 0 (Hydra 4.0.2 sends no rc in `maxes`). */
static void expect(const char *cmd, char *line, size_t cap) {
    char v[256];
    recv_line(line, cap);
    if (strcmp(field(line, "cmd", v, sizeof v), cmd) != 0) die("unexpected reply", line);
    field(line, "rc", v, sizeof v);
    if (v[0] && strcmp(v, "0") != 0) die("reply with rc != 0", line);
}

static int env_int(const char *name) {
    const char *s = getenv(name);
    if (!s || !*s) {
        fprintf(stderr, "pmi_exchange: %s is not set (run me under an MPI launcher)\n", name);
        exit(2);
    }
    return atoi(s);
}

int main(void) {
    char line[LINE_MAX_BYTES], kvs[300], v[LINE_MAX_BYTES];
    pmi_fd = env_int("PMI_FD");
    my_rank = env_int("PMI_RANK");
    int size = env_int("PMI_SIZE");

    send_line("cmd=init pmi_version=1 pmi_subversion=1");
    expect("response_to_init", line, sizeof line);
    send_line("cmd=get_maxes");
    expect("maxes", line, sizeof line);
    send_line("cmd=get_my_kvsname");
    expect("my_kvsname", line, sizeof line);
    field(line, "kvsname", kvs, sizeof kvs);
    if (!kvs[0]) die("empty kvsname", line);

    for (int k = 0; k < NKEYS; k++) {
        send_line("cmd=put kvsname=%s key=bench-%d-%d value=val-%d-%d-0123456789abcdef", kvs, my_rank, k, my_rank, k);
        expect("put_result", line, sizeof line);
    }
    send_line("cmd=barrier_in");
    expect("barrier_out", line, sizeof line);

    int gets = 0;
    int npeers = size - 1 < NPEERS ? size - 1 : NPEERS;
    for (int p = 1; p <= npeers; p++) {
        int peer = (my_rank + p) % size;
        for (int k = 0; k < NKEYS; k++) {
            char want[128];
            send_line("cmd=get kvsname=%s key=bench-%d-%d", kvs, peer, k);
            expect("get_result", line, sizeof line);
            snprintf(want, sizeof want, "val-%d-%d-0123456789abcdef", peer, k);
            if (strcmp(field(line, "value", v, sizeof v), want) != 0) die("wrong value", line);
            gets++;
        }
    }
    send_line("cmd=barrier_in");
    expect("barrier_out", line, sizeof line);
    send_line("cmd=finalize");
    expect("finalize_ack", line, sizeof line);
    close(pmi_fd);
    if (my_rank == 0) printf("pmi-exchange ok size=%d gets=%d\n", size, gets);
    return 0;
}
