// reload_busy RELOADS DATA EXE ARGS... : reload time with every kind of connection in flight
// (issue 12). Starts EXE ARGS (pinned to CPU 0; DATA must hold `big` and the LIST files made by
// bench/lifecycle.sh), measures IDLE_RELOADS SIGHUP reloads with nothing open (the idle figure),
// then opens, all at once: DOWNLOADS downloads of `big` read at RATE bytes/s each, UPLOADS HTTP
// uploads (half sized, half chunked) and UPLOADS file-port uploads sent at RATE, HALF half heads,
// HALF half command lines, IDLE idle keep-alive connections and LISTS LISTs read slowly; runs
// RELOADS SIGHUP reloads (each as soon as the previous ready line is in, plus GAP_MS), then lets
// every transfer finish at full speed and checks each answer. A child process meanwhile opens a
// fresh connection for GET /healthz every 10 ms. Prints one "key value..." line per figure.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "http_client.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static long env_long(const char* name, long fallback) {
    const char* v = getenv(name);
    return v ? atol(v) : fallback;
}

static int err_fd;  // the server's stderr
static char err_buf[1 << 16];
static size_t err_len;
static pid_t server;
static int http_port, files_port;

// The port after the last ':' of the word that starts with `key` in `line`.
static int port_of(const char* line, const char* key) {
    const char* at = strstr(line, key);
    if (!at) return 0;
    at += strlen(key);
    const char* end = strchr(at, ' ');
    const char* colon = NULL;
    for (const char* c = at; c < end; c++)
        if (*c == ':') colon = c;
    return colon ? atoi(colon + 1) : 0;
}

// Non-blocking scan of the server's stderr for the ready line of generation gen.
static int saw_ready(int gen) {
    char want[48];
    snprintf(want, sizeof want, " generation=%d\n", gen);
    for (;;) {
        if (err_len == sizeof err_buf - 1) {  // keep the tail only
            memmove(err_buf, err_buf + err_len / 2, err_len - err_len / 2);
            err_len -= err_len / 2;
        }
        ssize_t n = read(err_fd, err_buf + err_len, sizeof err_buf - 1 - err_len);
        if (n <= 0) break;
        err_len += (size_t)n;
    }
    err_buf[err_len] = 0;
    char* at = strstr(err_buf, want);
    if (!at) return 0;
    char* line = at;
    while (line > err_buf && line[-1] != '\n') line--;
    int ok = strncmp(line, "duet: ready ", 12) == 0;
    if (ok && gen == 0) {
        http_port = port_of(line, " http=");
        files_port = port_of(line, " files=");
    }
    if (ok) {  // forget up to here, so the next search starts fresh
        size_t used = (size_t)(at + strlen(want) - err_buf);
        memmove(err_buf, err_buf + used, err_len - used);
        err_len -= used;
    }
    return ok;
}

static int connect_to(int port, int small) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (small) {  // a slow reader: small segments and window, so the server's buffers fill
        int mss = 1000, buf = 16384;
        setsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof mss);
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr*)&sa, sizeof sa) < 0) {
        perror("connect");
        exit(1);
    }
    return fd;
}

static int wait_reload(int gen, double* ms) {
    double t0 = now_ms();
    kill(server, SIGHUP);
    while (!saw_ready(gen)) {
        if (now_ms() - t0 > 10000) return -1;
        struct pollfd p = {err_fd, POLLIN, 0};
        poll(&p, 1, 5);
    }
    *ms = now_ms() - t0;
    return 0;
}

enum Kind { DL, UP_SIZED, UP_CHUNKED, UP_FILE, HALF_HEAD, HALF_LINE, IDLE, LIST };
struct Conn {
    enum Kind kind;
    int fd;
    int phase;           // 0: transferring, 1: sent all / rest sent, reading the answer, 2: done
    size_t done, total;  // bytes moved of the transfer
    char rx[8192];
    size_t rx_len;
    size_t lines;  // LIST lines seen
    int error;
};

static char* big;
static size_t big_size;
static char* chunked_wire;
static size_t up_size, chunked_size;
static size_t list_count;

static void fail(struct Conn* c, const char* why) {
    if (!c->error) fprintf(stderr, "conn kind %d: %s (done %zu)\n", c->kind, why, c->done);
    c->error = 1;
    c->phase = 2;
}

static ssize_t rx_more(struct Conn* c) {
    if (c->rx_len == sizeof c->rx - 1) return 0;
    ssize_t n = recv(c->fd, c->rx + c->rx_len, sizeof c->rx - 1 - c->rx_len, 0);
    if (n > 0) c->rx_len += (size_t)n, c->rx[c->rx_len] = 0;
    return n;
}

// Reads an answer into rx; 1 when `needle` arrived, -1 on close.
static int answer(struct Conn* c, const char* needle) {
    ssize_t n = rx_more(c);
    if (n == 0 || (n < 0 && errno != EAGAIN)) return -1;
    return strstr(c->rx, needle) ? 1 : 0;
}

// One non-blocking step; `allowed` is how many bytes the transfer may have moved by now.
static void step(struct Conn* c, size_t allowed, int finishing) {
    if (c->phase == 2) return;
    char buf[65536];
    if (allowed > c->total) allowed = c->total;
    switch (c->kind) {
        case DL:
            if (c->phase == 0) {  // the head
                ssize_t n = rx_more(c);
                if (n == 0) return fail(c, "closed before the head");
                char* end = strstr(c->rx, "\r\n\r\n");
                if (!end) return;
                if (strncmp(c->rx, "HTTP/1.1 200", 12) != 0) return fail(c, "status");
                size_t body = c->rx_len - (size_t)(end + 4 - c->rx);
                if (memcmp(end + 4, big, body) != 0) return fail(c, "bytes differ");
                c->done = body;
                c->phase = 1;
            }
            while (c->done < allowed) {
                size_t want = allowed - c->done < sizeof buf ? allowed - c->done : sizeof buf;
                ssize_t n = recv(c->fd, buf, want, 0);
                if (n == 0) return fail(c, "closed mid-download");
                if (n < 0) return errno == EAGAIN ? (void)0 : fail(c, strerror(errno));
                if (memcmp(buf, big + c->done, (size_t)n) != 0) return fail(c, "bytes differ");
                c->done += (size_t)n;
            }
            if (c->done == c->total) c->phase = 2;
            return;
        case UP_SIZED:
        case UP_CHUNKED:
        case UP_FILE:
            if (c->phase == 0) {
                const char* src = c->kind == UP_CHUNKED ? chunked_wire : big;
                while (c->done < allowed) {
                    ssize_t n = send(c->fd, src + c->done, allowed - c->done, MSG_NOSIGNAL);
                    if (n < 0) return errno == EAGAIN ? (void)0 : fail(c, strerror(errno));
                    c->done += (size_t)n;
                }
                if (c->done == c->total) c->phase = 1;
                return;
            }
            {
                int r = answer(c, c->kind == UP_FILE ? "\n" : "}\n");
                if (r < 0) return fail(c, "closed before the answer");
                if (r == 0) return;
                int good = c->kind == UP_FILE ? strncmp(c->rx, "OK ", 3) == 0
                                              : strncmp(c->rx, "HTTP/1.1 201", 12) == 0;
                if (!good) return fail(c, c->rx);
                c->phase = 2;
            }
            return;
        case HALF_HEAD:
        case HALF_LINE:
        case IDLE:
            if (!finishing) return;
            if (c->phase == 0) {
                const char* rest = c->kind == HALF_HEAD ? "st: b\r\n\r\n"
                                   : c->kind == HALF_LINE
                                       ? "NG\n"
                                       : "GET /healthz HTTP/1.1\r\nHost: b\r\n\r\n";
                c->rx_len = 0;
                c->rx[0] = 0;
                if (send(c->fd, rest, strlen(rest), MSG_NOSIGNAL) != (ssize_t)strlen(rest))
                    return fail(c, "send the rest");
                c->phase = 1;
            }
            {
                int r = answer(c, c->kind == HALF_LINE ? "OK pong\n" : "\r\n\r\nok\n");
                if (r < 0) return fail(c, "closed");
                if (r > 0) c->phase = 2;
            }
            return;
        case LIST:
            while (c->done < allowed || finishing) {
                size_t want = sizeof buf;
                if (!finishing && allowed - c->done < want) want = allowed - c->done;
                ssize_t n = recv(c->fd, buf, want, 0);
                if (n == 0) return fail(c, "closed mid-listing");
                if (n < 0) return errno == EAGAIN ? (void)0 : fail(c, strerror(errno));
                for (ssize_t i = 0; i < n; i++) c->lines += buf[i] == '\n';
                c->done += (size_t)n;
                if (c->lines == list_count + 1) {
                    c->phase = 2;
                    return;
                }
                if (c->lines > list_count + 1) return fail(c, "extra lines");
            }
            return;
    }
}

// The probe child: a fresh connection for GET /healthz every 10 ms until SIGTERM; one line out.
static void run_probe(void) {
    double max = 0, sum = 0;
    long n = 0, errors = 0;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    const char* req = "GET /healthz HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n";
    for (;;) {
        sigset_t pend;
        sigpending(&pend);
        if (sigismember(&pend, SIGTERM)) break;
        double t0 = now_ms();
        int fd = connect_to(http_port, 0);
        int status = 0;
        if (write(fd, req, strlen(req)) != (ssize_t)strlen(req) || read_response(fd, &status) < 0 ||
            (status != 200 && status != 503))
            errors++;
        close(fd);
        double t = now_ms() - t0;
        if (t > max) max = t;
        sum += t;
        n++;
        usleep(10000);
    }
    printf("healthz_fresh_ms max %.3f mean %.3f count %ld errors %ld\n", max, n ? sum / n : 0, n,
           errors);
    fflush(stdout);
}

static int cmp_double(const void* a, const void* b) {
    double x = *(const double*)a, y = *(const double*)b;
    return x < y ? -1 : x > y;
}

static void print_stats(const char* key, double* v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    printf("%s median %.3f min %.3f max %.3f count %d\n", key, n ? v[n / 2] : 0, n ? v[0] : 0,
           n ? v[n - 1] : 0, n);
}

static long fd_count(pid_t pid) {
    char cmd[64];
    snprintf(cmd, sizeof cmd, "ls /proc/%d/fd | wc -l", (int)pid);
    FILE* f = popen(cmd, "r");
    long n = -1;
    if (f && fscanf(f, "%ld", &n) != 1) n = -1;
    if (f) pclose(f);
    return n;
}

static long rss_kib(pid_t pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE* f = fopen(path, "r");
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) v = atol(line + 6);
    if (f) fclose(f);
    return v;
}

int main(int argc, char** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: see bench/reload_busy.c\n");
        return 2;
    }
    int reloads = atoi(argv[1]);
    const char* data = argv[2];
    long downloads = env_long("DOWNLOADS", 50), uploads = env_long("UPLOADS", 10),
         halves = env_long("HALF", 20), idles = env_long("IDLE", 20), lists = env_long("LISTS", 10),
         idle_reloads = env_long("IDLE_RELOADS", 20), gap_ms = env_long("GAP_MS", 50);
    double rate = (double)env_long("RATE", 5000000);  // bytes/s per transfer
    list_count = (size_t)env_long("LIST_FILES", 0);
    up_size = (size_t)env_long("UPLOAD_BYTES", 64 << 20);

    char path[4096];
    snprintf(path, sizeof path, "%s/big", data);
    int bf = open(path, O_RDONLY);
    struct stat st;
    if (bf < 0 || fstat(bf, &st) != 0) {
        perror(path);
        return 1;
    }
    big_size = (size_t)st.st_size;
    big = malloc(big_size);
    for (size_t got = 0; got < big_size;) {
        ssize_t n = read(bf, big + got, big_size - got);
        if (n <= 0) return 1;
        got += (size_t)n;
    }
    close(bf);
    if (up_size > big_size) up_size = big_size;
    chunked_wire = malloc(up_size + up_size / 16384 * 16 + 64);
    for (size_t at = 0; at < up_size;) {
        size_t n = up_size - at < 16384 ? up_size - at : 16384;
        chunked_size += (size_t)sprintf(chunked_wire + chunked_size, "%zx\r\n", n);
        memcpy(chunked_wire + chunked_size, big + at, n);
        chunked_size += n;
        memcpy(chunked_wire + chunked_size, "\r\n", 2);
        chunked_size += 2;
        at += n;
    }
    chunked_size += (size_t)sprintf(chunked_wire + chunked_size, "0\r\n\r\n");

    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) return 1;
    server = fork();
    if (server == 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(0, &set);
        sched_setaffinity(0, sizeof set, &set);
        dup2(p[1], 2);
        execv(argv[3], argv + 3);
        _exit(127);
    }
    close(p[1]);
    err_fd = p[0];
    fcntl(err_fd, F_SETFL, O_NONBLOCK);
    double t0 = now_ms();
    while (!saw_ready(0)) {
        if (now_ms() - t0 > 10000) return 1;
        usleep(2000);
    }
    int gen = 0;
    double* idle_ms = calloc((size_t)idle_reloads + 1, sizeof(double));
    for (int i = 0; i < idle_reloads; i++) {
        if (wait_reload(++gen, &idle_ms[i]) < 0) return 1;
        usleep((useconds_t)gap_ms * 1000);
    }

    long n = downloads + 2 * uploads + 2 * halves + idles + lists;
    struct Conn* conns = calloc((size_t)n, sizeof *conns);
    long k = 0;
    char line[256];
    for (long i = 0; i < downloads; i++, k++) {
        conns[k] = (struct Conn){.kind = DL, .fd = connect_to(http_port, 1), .total = big_size};
        const char* req = "GET /files/big HTTP/1.1\r\nHost: b\r\n\r\n";
        if (write(conns[k].fd, req, strlen(req)) < 0) return 1;
    }
    for (long i = 0; i < uploads; i++, k++) {
        int chunked = i % 2;
        conns[k] = (struct Conn){.kind = chunked ? UP_CHUNKED : UP_SIZED,
                                 .fd = connect_to(http_port, 0),
                                 .total = chunked ? chunked_size : up_size};
        if (chunked)
            snprintf(line, sizeof line,
                     "PUT /files/up%ld HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\n\r\n",
                     i);
        else
            snprintf(line, sizeof line,
                     "PUT /files/up%ld HTTP/1.1\r\nHost: b\r\nContent-Length: %zu\r\n\r\n", i,
                     up_size);
        if (write(conns[k].fd, line, strlen(line)) < 0) return 1;
    }
    for (long i = 0; i < uploads; i++, k++) {
        conns[k] =
            (struct Conn){.kind = UP_FILE, .fd = connect_to(files_port, 0), .total = up_size};
        snprintf(line, sizeof line, "PUT fup%ld %zu\n", i, up_size);
        if (write(conns[k].fd, line, strlen(line)) < 0) return 1;
    }
    for (long i = 0; i < halves; i++, k++) {
        conns[k] = (struct Conn){.kind = HALF_HEAD, .fd = connect_to(http_port, 0)};
        if (write(conns[k].fd, "GET /healthz HTTP/1.1\r\nHo", 25) < 0) return 1;
    }
    for (long i = 0; i < halves; i++, k++) {
        conns[k] = (struct Conn){.kind = HALF_LINE, .fd = connect_to(files_port, 0)};
        if (write(conns[k].fd, "PI", 2) < 0) return 1;
    }
    for (long i = 0; i < idles; i++, k++) {
        conns[k] = (struct Conn){.kind = IDLE, .fd = connect_to(http_port, 0)};
        const char* req = "GET /healthz HTTP/1.1\r\nHost: b\r\n\r\n";
        int status = 0;
        if (write(conns[k].fd, req, strlen(req)) < 0 || read_response(conns[k].fd, &status) < 0)
            return 1;
    }
    for (long i = 0; i < lists; i++, k++) {
        conns[k] = (struct Conn){.kind = LIST, .fd = connect_to(files_port, 1)};
        conns[k].total = (size_t)-1 / 2;
        if (write(conns[k].fd, "LIST\n", 5) < 0) return 1;
    }
    for (long i = 0; i < n; i++) fcntl(conns[i].fd, F_SETFL, O_NONBLOCK);

    int pp[2];
    if (pipe(pp) < 0) return 1;
    pid_t probe = fork();
    if (probe == 0) {
        close(pp[0]);
        dup2(pp[1], 1);
        run_probe();
        _exit(0);
    }
    close(pp[1]);

    // In flight: reloads one after the other, transfers moving at RATE meanwhile.
    double* busy_ms = calloc((size_t)reloads + 1, sizeof(double));
    long fds_early = -1, rss_early = -1;
    double start = now_ms();
    int r = 0, reloading = 0;
    double reload_t0 = 0, next_reload = now_ms() + 200;
    while (r < reloads) {
        double now = now_ms();
        size_t allowed = (size_t)((now - start) / 1000.0 * rate);
        for (long i = 0; i < n; i++)
            step(&conns[i], conns[i].kind == LIST ? allowed / 100 : allowed, 0);
        if (!reloading && now >= next_reload) {
            reload_t0 = now_ms();
            kill(server, SIGHUP);
            reloading = 1;
        }
        if (reloading && saw_ready(gen + 1)) {
            busy_ms[r++] = now_ms() - reload_t0;
            gen++;
            reloading = 0;
            next_reload = now_ms() + (double)gap_ms;
            if (r == 10) fds_early = fd_count(server), rss_early = rss_kib(server);
        } else if (reloading && now_ms() - reload_t0 > 10000) {
            fprintf(stderr, "reload %d: no ready line\n", r + 1);
            return 1;
        }
        usleep(1000);
    }
    long fds_end = fd_count(server), rss_end = rss_kib(server);
    kill(probe, SIGTERM);
    char probe_line[256] = "";
    ssize_t pl = read(pp[0], probe_line, sizeof probe_line - 1);
    if (pl > 0) probe_line[pl] = 0;
    waitpid(probe, NULL, 0);

    // Everyone finishes at full speed.
    double fin = now_ms();
    long open_left = n;
    while (open_left > 0 && now_ms() - fin < 120000) {
        open_left = 0;
        for (long i = 0; i < n; i++) {
            step(&conns[i], (size_t)-1, 1);
            open_left += conns[i].phase != 2;
        }
        struct pollfd pf = {conns[0].fd, 0, 0};
        poll(&pf, 0, 1);
    }
    long errors = open_left;
    for (long i = 0; i < n; i++) errors += conns[i].error;

    print_stats("reload_idle_ms", idle_ms, (int)idle_reloads);
    print_stats("reload_busy_ms", busy_ms, reloads);
    printf("%s", probe_line);
    printf("connections count %ld errors %ld unfinished %ld\n", n, errors, open_left);
    printf("server fds_after_10 %ld fds_end %ld rss_kib_after_10 %ld rss_kib_end %ld\n", fds_early,
           fds_end, rss_early, rss_end);
    kill(server, SIGTERM);
    waitpid(server, NULL, 0);
    return errors ? 1 : 0;
}
