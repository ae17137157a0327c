/* stdin sink: reads stdin to EOF in 1 MiB read()s and prints "reader read <bytes>" on stdout. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void) {
    static char buf[1 << 20];
    long long total = 0;
    for (;;) {
        ssize_t r = read(0, buf, sizeof buf);
        if (r < 0) {
            if (errno == EINTR) continue;
            fprintf(stderr, "reader: read failed after %lld bytes: %s\n", total, strerror(errno));
            return 1;
        }
        if (r == 0) break;
        total += r;
    }
    printf("reader read %lld\n", total);
    return 0;
}
