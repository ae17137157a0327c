/* A PMI-1 client with no MPI library that makes one big barrier: each rank puts NKEYS values of VLEN bytes
 * (16 x 1024 = 16 KiB by default; `pmi_bulk NKEYS VLEN` for others), enters one barrier, then reads every key of
 * two peers (the next rank, and the rank half the job away: another host under block placement), enters a
 * second, empty barrier and finalizes. Every reply is checked (cmd, rc, the exact value); any mismatch exits 1
 * with a message on stderr. Rank 0 prints "pmi-bulk ok size=<n> keys=<k> bytes=<v>" when everything matched.
 * The big barrier is what a launch tree must carry: size * NKEYS * VLEN bytes of KVS in one epoch. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LINE_CAP 8192

static int fd = -1;
static int rank = -1;
static char inbuf[LINE_CAP * 2];
static size_t inlen = 0;

static void fail(const char *what, const char *detail) {
    fprintf(stderr, "pmi_bulk[rank %d]: %s%s%.200s\n", rank, what, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
    char buf[LINE_CAP];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= (int)sizeof buf - 1) fail("request too long", NULL);
    buf[n++] = '\n';
    for (int off = 0; off < n;) {
        ssize_t w = write(fd, buf + off, (size_t)(n - off));
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) fail("write to PMI_FD failed", strerror(errno));
        off += (int)w;
    }
}

static void hear(char *out) {
    for (;;) {
        char *nl = memchr(inbuf, '\n', inlen);
        if (nl) {
            size_t len = (size_t)(nl - inbuf);
            if (len >= LINE_CAP) fail("reply too long", NULL);
            memcpy(out, inbuf, len);
            out[len] = '\0';
            inlen -= len + 1;
            memmove(inbuf, nl + 1, inlen);
            return;
        }
        if (inlen == sizeof inbuf) fail("reply too long", NULL);
        ssize_t r = read(fd, inbuf + inlen, sizeof inbuf - inlen);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) fail("read from PMI_FD failed", strerror(errno));
        if (r == 0) fail("the PMI server closed the connection", NULL);
        inlen += (size_t)r;
    }
}

/* Copies the value of token `key=` of a reply line into out ("" when absent). */
static const char *token(const char *line, const char *key, char *out, size_t cap) {
    size_t kl = strlen(key);
    out[0] = '\0';
    for (const char *p = line; *p;) {
        while (*p == ' ') p++;
        const char *end = strchr(p, ' ');
        if (!end) end = p + strlen(p);
        if ((size_t)(end - p) > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
            size_t n = (size_t)(end - p) - kl - 1;
            if (n >= cap) n = cap - 1;
            memcpy(out, p + kl + 1, n);
            out[n] = '\0';
            break;
        }
        p = end;
    }
    return out;
}

static void reply(const char *cmd, char *line) {
    char v[64];
    hear(line);
    if (strcmp(token(line, "cmd", v, sizeof v), cmd) != 0) fail("unexpected reply", line);
    token(line, "rc", v, sizeof v);
    if (v[0] && strcmp(v, "0") != 0) fail("reply with rc != 0", line);
}

/* The value rank r puts under key k: a label, then letters that depend on r and k, VLEN bytes in all. */
static void value_of(int r, int k, int vlen, char *out) {
    int n = snprintf(out, (size_t)vlen + 1, "r%dk%d-", r, k);
    for (int i = n; i < vlen; i++) out[i] = (char)('a' + (r * 7 + k * 3 + i) % 26);
    out[vlen] = '\0';
}

static int need(const char *name) {
    const char *s = getenv(name);
    if (!s || !*s) {
        fprintf(stderr, "pmi_bulk: %s is not set (run me under an MPI launcher)\n", name);
        exit(2);
    }
    return atoi(s);
}

int main(int argc, char **argv) {
    int nkeys = argc > 1 ? atoi(argv[1]) : 16;
    int vlen = argc > 2 ? atoi(argv[2]) : 1024;
    if (nkeys < 1 || vlen < 16 || vlen > 1024) {
        fprintf(stderr, "usage: pmi_bulk [NKEYS [VLEN (16-1024)]]\n");
        return 2;
    }
    static char line[LINE_CAP], kvs[300], got[LINE_CAP], want[1100];
    fd = need("PMI_FD");
    rank = need("PMI_RANK");
    int size = need("PMI_SIZE");

    say("cmd=init pmi_version=1 pmi_subversion=1");
    reply("response_to_init", line);
    say("cmd=get_maxes");
    reply("maxes", line);
    say("cmd=get_my_kvsname");
    reply("my_kvsname", line);
    token(line, "kvsname", kvs, sizeof kvs);
    if (!kvs[0]) fail("empty kvsname", line);

    for (int k = 0; k < nkeys; k++) {
        value_of(rank, k, vlen, want);
        say("cmd=put kvsname=%s key=bulk-%d-%d value=%s", kvs, rank, k, want);
        reply("put_result", line);
    }
    say("cmd=barrier_in");
    reply("barrier_out", line);

    int peers[2] = {(rank + 1) % size, (rank + size / 2) % size};
    for (int p = 0; p < 2; p++) {
        for (int k = 0; k < nkeys; k++) {
            say("cmd=get kvsname=%s key=bulk-%d-%d", kvs, peers[p], k);
            reply("get_result", line);
            value_of(peers[p], k, vlen, want);
            if (strcmp(token(line, "value", got, sizeof got), want) != 0) fail("wrong value", line);
        }
    }
    say("cmd=barrier_in");
    reply("barrier_out", line);
    say("cmd=finalize");
    reply("finalize_ack", line);
    close(fd);
    if (rank == 0) printf("pmi-bulk ok size=%d keys=%d bytes=%d\n", size, nkeys, vlen);
    return 0;
}
