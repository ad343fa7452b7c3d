// put_timed PORT PATH FILE : one HTTP PUT of FILE (Content-Length) to 127.0.0.1:PORT PATH, and
// when its phases happened, so bench/stall.sh can look at the publish alone. Prints
// "STATUS START_MS LAST_BYTE_MS ANSWER_MS" (CLOCK_REALTIME, ms with 3 decimals): the request's
// start, the return of the write that handed the body's last byte to the kernel, and the arrival
// of the answer's status line. Between the last two, duet drains its socket buffer (a few MiB),
// then publishes: fsync of the data, rename, fsync of the directory.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char** argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: put_timed PORT PATH FILE\n");
        return 2;
    }
    int file = open(argv[3], O_RDONLY);
    struct stat st;
    if (file < 0 || fstat(file, &st) != 0) {
        perror(argv[3]);
        return 1;
    }
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((unsigned short)atoi(argv[1]))};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    double start = now_ms();
    if (s < 0 || connect(s, (struct sockaddr*)&a, sizeof a) != 0) {
        perror("connect");
        return 1;
    }
    char head[512];
    int n = snprintf(head, sizeof head,
                     "PUT %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %lld\r\n"
                     "Connection: close\r\n\r\n",
                     argv[2], (long long)st.st_size);
    if (write(s, head, (size_t)n) != n) {
        perror("write");
        return 1;
    }
    off_t off = 0;
    while (off < st.st_size) {
        ssize_t w = sendfile(s, file, &off, (size_t)(st.st_size - off));
        if (w <= 0) {
            perror("sendfile");
            return 1;
        }
    }
    double last = now_ms();
    char line[256];
    size_t got = 0;
    while (got < sizeof line - 1) {
        ssize_t r = read(s, line + got, sizeof line - 1 - got);
        if (r <= 0) break;
        got += (size_t)r;
        if (memchr(line, '\n', got)) break;
    }
    double answer = now_ms();
    line[got] = 0;
    int status = 0;
    sscanf(line, "HTTP/1.1 %d", &status);
    printf("%d %.3f %.3f %.3f\n", status, start, last, answer);
    return status == 201 || status == 200 ? 0 : 1;
}
