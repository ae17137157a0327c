/* Output flood: writes <mib> MiB to stdout in 64 KiB write()s of 64-byte text lines, then reports on
 * stderr "writer <rank> wrote <bytes>" (so a run whose stdout goes to /dev/null can still be checked). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK (64 * 1024)

int main(int argc, char **argv) {
    long long mib = argc > 1 ? atoll(argv[1]) : 256;
    long long total = mib * 1024 * 1024, done = 0;
    const char *rank = getenv("PMI_RANK");
    static char buf[CHUNK];
    for (int i = 0; i < CHUNK; i++) buf[i] = (i % 64 == 63) ? '\n' : (char)('a' + (i / 64) % 26);
    while (done < total) {
        size_t want = total - done < CHUNK ? (size_t)(total - done) : CHUNK;
        ssize_t w = write(1, buf, want);
        if (w < 0) {
            if (errno == EINTR) continue;
            fprintf(stderr, "writer %s: write failed after %lld bytes: %s\n", rank ? rank : "?", done, strerror(errno));
            return 1;
        }
        done += w;
    }
    fprintf(stderr, "writer %s wrote %lld\n", rank ? rank : "?", done);
    return 0;
}
