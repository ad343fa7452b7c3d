// probe PORT INTERVAL_US OUT: on one keep-alive connection to 127.0.0.1:PORT, send GET / and read
// the whole answer, sleep INTERVAL_US, repeat until SIGTERM/SIGINT; then append each latency in ms
// to OUT, one per line. A closed connection is reopened (the connect counts in that sample).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http_client.h"

static volatile sig_atomic_t stop;
static void on_signal(int s) {
    (void)s;
    stop = 1;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static struct sockaddr_in sa;
static int open_conn(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr*)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

// 0 when one whole response with a Content-Length was read
static int exchange(int fd) {
    static const char get[] = "GET / HTTP/1.1\r\nHost: probe\r\n\r\n";
    if (write(fd, get, sizeof get - 1) != (ssize_t)(sizeof get - 1)) return -1;
    int status = 0;
    return read_response(fd, &status) == 0 && status == 200 ? 0 : -1;
}

int main(int argc, char** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: probe PORT INTERVAL_US OUT\n");
        return 2;
    }
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)atoi(argv[1]));
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    useconds_t interval = (useconds_t)atoi(argv[2]);
    struct sigaction act = {.sa_handler = on_signal};
    sigaction(SIGTERM, &act, NULL);
    sigaction(SIGINT, &act, NULL);
    size_t cap = 1 << 16, n = 0, failed = 0;
    double* lat = malloc(cap * sizeof *lat);
    int fd = open_conn();
    while (!stop) {
        double t0 = now_ms();
        if (fd < 0) fd = open_conn();
        if (fd < 0 || exchange(fd) != 0) {
            if (stop) break;
            failed++;
            if (fd >= 0) close(fd);
            fd = -1;
            continue;
        }
        double t1 = now_ms();
        if (n == cap) lat = realloc(lat, (cap *= 2) * sizeof *lat);
        lat[n++] = t1 - t0;
        usleep(interval);
    }
    FILE* out = fopen(argv[3], "a");
    for (size_t i = 0; i < n; i++) fprintf(out, "%.3f\n", lat[i]);
    fclose(out);
    if (failed) fprintf(stderr, "probe: %zu failed requests\n", failed);
    return 0;
}
