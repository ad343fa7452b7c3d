// stall_probe: client side of bench/stall.sh.
//   stall_probe health PORT SECONDS      GET /healthz on one keep-alive connection every 1 ms;
//                                        prints "probes=N p50=MS p99=MS max=MS failed=N"
//   stall_probe crowd PORT CLIENTS SECONDS PATH
//                                        CLIENTS keep-alive connections, each sending GET PATH and
//                                        reading the whole answer, again and again, until SECONDS
//                                        are up; prints "requests=N failed=N"
//   stall_probe files PORT LINE SECONDS  one file-port command line, answer line printed
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

// One whole response of any size: the head into a small buffer, the body drained (the shared
// http_client.h reader keeps the whole response in 4 KiB, too small for a listing).
static int read_whole(int fd, int* status) {
    char buf[8192];
    size_t have = 0;
    for (;;) {
        ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
        if (n <= 0) return -1;
        have += (size_t)n;
        buf[have] = 0;
        char* end = strstr(buf, "\r\n\r\n");
        if (!end) {
            if (have == sizeof buf - 1) return -1;
            continue;
        }
        char* cl = strcasestr(buf, "content-length:");
        size_t len = cl ? strtoul(cl + 15, NULL, 10) : 0;
        size_t head = (size_t)(end + 4 - buf);
        size_t got = have - head;
        static char sink[1 << 16];
        while (got < len) {
            ssize_t m = read(fd, sink, len - got < sizeof sink ? len - got : sizeof sink);
            if (m <= 0) return -1;
            got += (size_t)m;
        }
        if (status) *status = atoi(buf + 9);
        return 0;
    }
}

static struct sockaddr_in sa;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

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

static int get(int fd, const char* path) {
    char req[512];
    int len = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: stall\r\n\r\n", path);
    if (write(fd, req, (size_t)len) != len) return -1;
    int status = 0;
    return read_whole(fd, &status) == 0 && status == 200 ? 0 : -1;
}

static int cmp(const void* a, const void* b) {
    double x = *(const double*)a, y = *(const double*)b;
    return x < y ? -1 : x > y;
}

static int health(double seconds) {
    size_t cap = 1 << 16, n = 0, failed = 0;
    double* lat = malloc(cap * sizeof *lat);
    double end = now_ms() + seconds * 1e3;
    int fd = open_conn();
    while (now_ms() < end) {
        double t0 = now_ms();
        if (fd < 0) fd = open_conn();
        if (fd < 0 || get(fd, "/healthz") != 0) {
            failed++;
            if (fd >= 0) close(fd);
            fd = -1;
            usleep(1000);
            continue;
        }
        if (n == cap) lat = realloc(lat, (cap *= 2) * sizeof *lat);
        lat[n++] = now_ms() - t0;
        usleep(1000);
    }
    if (n == 0) {
        printf("probes=0 failed=%zu\n", failed);
        return 1;
    }
    qsort(lat, n, sizeof *lat, cmp);
    printf("probes=%zu p50=%.2f p99=%.2f max=%.2f failed=%zu\n", n, lat[n / 2], lat[n * 99 / 100],
           lat[n - 1], failed);
    return 0;
}

struct crowd_arg {
    const char* path;
    double end;
    long requests, failed;
};

static void* crowd_one(void* p) {
    struct crowd_arg* a = p;
    int fd = open_conn();
    while (fd >= 0 && now_ms() < a->end) {
        if (get(fd, a->path) == 0) {
            a->requests++;
        } else {
            a->failed++;
            close(fd);
            fd = open_conn();
        }
    }
    if (fd >= 0) close(fd);
    return NULL;
}

static int crowd(int clients, double seconds, const char* path) {
    pthread_t* th = calloc((size_t)clients, sizeof *th);
    struct crowd_arg* args = calloc((size_t)clients, sizeof *args);
    double end = now_ms() + seconds * 1e3;
    for (int i = 0; i < clients; i++) {
        args[i] = (struct crowd_arg){path, end, 0, 0};
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setstacksize(&at, 256 * 1024);
        pthread_create(&th[i], &at, crowd_one, &args[i]);
    }
    long req = 0, failed = 0;
    for (int i = 0; i < clients; i++) {
        pthread_join(th[i], NULL);
        req += args[i].requests;
        failed += args[i].failed;
    }
    printf("requests=%ld failed=%ld\n", req, failed);
    return 0;
}

static int files_line(const char* line, double seconds) {
    int fd = open_conn();
    if (fd < 0) return 1;
    char buf[512];
    snprintf(buf, sizeof buf, "%s\n", line);
    if (write(fd, buf, strlen(buf)) < 0) return 1;
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, (int)(seconds * 1e3)) <= 0) {
        printf("(no answer within %.0f s)\n", seconds);
        return 0;
    }
    ssize_t n = read(fd, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    char* nl = strchr(buf, '\n');
    if (nl) *nl = 0;
    printf("%s\n", buf);
    return 0;
}

int main(int argc, char** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: see the comment at the top of bench/stall_probe.c\n");
        return 2;
    }
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)atoi(argv[2]));
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (!strcmp(argv[1], "health")) return health(atof(argv[3]));
    if (!strcmp(argv[1], "crowd") && argc >= 6) return crowd(atoi(argv[3]), atof(argv[4]), argv[5]);
    if (!strcmp(argv[1], "files") && argc >= 5) return files_line(argv[3], atof(argv[4]));
    fprintf(stderr, "stall_probe: unknown mode %s\n", argv[1]);
    return 2;
}
