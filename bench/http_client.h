// The one HTTP client routine the bench helpers share: read one whole response (head plus a
// Content-Length body) from a blocking socket.
#pragma once
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// 0 when a complete response arrived (its status code in *status, if given), -1 on close/error.
static inline int read_response(int fd, int* status) {
    char buf[4096];
    size_t have = 0;
    for (;;) {
        ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
        if (n <= 0) return -1;
        have += (size_t)n;
        buf[have] = 0;
        char* end = strstr(buf, "\r\n\r\n");
        if (!end) continue;
        char* cl = strcasestr(buf, "content-length:");
        size_t len = cl ? strtoul(cl + 15, NULL, 10) : 0;
        if (have < (size_t)(end + 4 - buf) + len) continue;
        if (status) *status = have > 12 ? atoi(buf + 9) : 0;
        return 0;
    }
}
