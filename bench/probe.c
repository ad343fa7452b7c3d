// probe PORT RATE_HZ OUT [TIMEOUT_MS [PATH]]: an open-loop latency probe. Requests for PATH
// (default /) are due at a fixed rate, whatever happened to the earlier ones, and each latency is
// measured from the moment the request was due, not from when it could be sent: a stalled server
// shows up as the whole stall in every request that fell due during it (no coordinated omission).
// Requests go out on keep-alive connections, a new one opened whenever none is free (at most 256).
// A request not answered within TIMEOUT_MS (default 1000) counts as a timeout; a refused or reset
// connection or an answer other than 200 as an error; both are written as "inf", never dropped, so
// they land at the top of every percentile. Runs until SIGTERM/SIGINT, then waits for what is in
// flight (bounded by the timeout) and writes one latency in ms per line to OUT; prints a summary
// line on stderr. With PROBE_STAMPS=1 in the environment each line is "DUE LATENCY", DUE the
// wall-clock time (Unix epoch, ms) the request fell due, so a script can cut windows out of a run.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 256
#define MAX_QUEUE 65536

enum state { FREE, CONNECTING, IDLE, BUSY };
struct conn {
    int fd;
    enum state st;
    double due;  // when the request on this connection fell due
    char buf[4096];
    size_t have;
};

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

static struct conn conns[MAX_CONNS];
static double queue[MAX_QUEUE];  // due times of requests waiting for a connection
static size_t q_head, q_len;
static FILE* out;
static long n_due, n_ok, n_timeout, n_error;
static int ep;
static struct sockaddr_in sa;
static char request[512];
static size_t request_len;
static int stamps;           // PROBE_STAMPS=1: write the due time before each latency
static double epoch_offset;  // CLOCK_REALTIME minus CLOCK_MONOTONIC, in ms

static void record(double due, int outcome) {  // outcome: 0 ok, 1 timeout, 2 error
    if (stamps) fprintf(out, "%.3f ", due + epoch_offset);
    if (outcome == 0) {
        fprintf(out, "%.3f\n", now_ms() - due);
        ++n_ok;
    } else {
        fprintf(out, "inf\n");
        if (outcome == 1)
            ++n_timeout;
        else
            ++n_error;
    }
}

static void drop(struct conn* c) {
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->st = FREE;
    c->have = 0;
}

static void send_request(struct conn* c) {
    ssize_t n = send(c->fd, request, request_len, MSG_NOSIGNAL);
    if (n != (ssize_t)request_len) {  // a tiny request into an empty socket buffer: all or error
        record(c->due, 2);
        drop(c);
        return;
    }
    c->st = BUSY;
    c->have = 0;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void dispatch(void) {
    while (q_len > 0) {
        struct conn* idle = NULL;
        struct conn* free_slot = NULL;
        for (int i = 0; i < MAX_CONNS && !idle; ++i) {
            if (conns[i].st == IDLE)
                idle = &conns[i];
            else if (conns[i].st == FREE && !free_slot)
                free_slot = &conns[i];
        }
        double due = queue[q_head];
        if (idle) {
            idle->due = due;
            send_request(idle);
        } else if (free_slot) {
            int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            free_slot->fd = fd;
            free_slot->due = due;
            if (connect(fd, (struct sockaddr*)&sa, sizeof sa) != 0 && errno != EINPROGRESS) {
                record(due, 2);
                drop(free_slot);
            } else {
                free_slot->st = CONNECTING;
                struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = free_slot};
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
            }
        } else {
            return;  // every connection busy: the request waits, its clock running
        }
        q_head = (q_head + 1) % MAX_QUEUE;
        --q_len;
    }
}

// 1 when c->buf holds a whole response (head plus Content-Length body).
static int complete(struct conn* c) {
    c->buf[c->have] = 0;
    char* end = strstr(c->buf, "\r\n\r\n");
    if (!end) return 0;
    char* cl = strcasestr(c->buf, "content-length:");
    size_t len = cl ? strtoul(cl + 15, NULL, 10) : 0;
    return c->have >= (size_t)(end + 4 - c->buf) + len;
}

static void on_event(struct conn* c, unsigned events) {
    if (c->st == CONNECTING) {
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err || (events & (EPOLLERR | EPOLLHUP))) {
            record(c->due, 2);
            drop(c);
            return;
        }
        send_request(c);
        return;
    }
    if (c->st == IDLE) {  // the server closed an idle keep-alive connection
        drop(c);
        return;
    }
    ssize_t n = recv(c->fd, c->buf + c->have, sizeof c->buf - 1 - c->have, 0);
    if (n <= 0) {
        if (n < 0 && errno == EAGAIN) return;
        record(c->due, 2);
        drop(c);
        return;
    }
    c->have += (size_t)n;
    if (complete(c)) {
        record(c->due, atoi(c->buf + 9) == 200 ? 0 : 2);  // "HTTP/1.1 200"
        c->st = IDLE;
        c->have = 0;
    } else if (c->have >= sizeof c->buf - 1) {
        record(c->due, 2);  // larger than a probe answer can be
        drop(c);
    }
}

int main(int argc, char** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: probe PORT RATE_HZ OUT [TIMEOUT_MS [PATH]]\n");
        return 2;
    }
    int port = atoi(argv[1]);
    double rate = atof(argv[2]);
    double timeout = argc > 4 ? atof(argv[4]) : 1000;
    const char* path = argc > 5 ? argv[5] : "/";
    out = fopen(argv[3], "a");
    if (!out || rate <= 0) return 2;
    request_len =
        (size_t)snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: probe\r\n\r\n", path);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const char* st = getenv("PROBE_STAMPS");
    stamps = st && !strcmp(st, "1");
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    epoch_offset = rt.tv_sec * 1e3 + rt.tv_nsec / 1e6 - now_ms();
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < MAX_CONNS; ++i) conns[i].fd = -1;
    ep = epoll_create1(EPOLL_CLOEXEC);
    double interval = 1000.0 / rate, next = now_ms(), stopped_at = 0;
    for (;;) {
        double now = now_ms();
        if (stop && stopped_at == 0) stopped_at = now;
        // Everything that fell due is queued, however late we are: open loop.
        while (!stop && next <= now) {
            if (q_len < MAX_QUEUE) {
                queue[(q_head + q_len) % MAX_QUEUE] = next;
                ++q_len;
            } else {
                record(next, 1);  // cannot even queue it: it will never be answered in time
            }
            ++n_due;
            next += interval;
        }
        // Timeouts: in flight or still waiting for a connection.
        for (int i = 0; i < MAX_CONNS; ++i) {
            struct conn* c = &conns[i];
            if ((c->st == BUSY || c->st == CONNECTING) && now - c->due > timeout) {
                record(c->due, 1);
                drop(c);
            }
        }
        while (q_len > 0 && now - queue[q_head] > timeout) {
            record(queue[q_head], 1);
            q_head = (q_head + 1) % MAX_QUEUE;
            --q_len;
        }
        dispatch();
        int busy = q_len > 0;
        for (int i = 0; i < MAX_CONNS && !busy; ++i)
            busy = conns[i].st == BUSY || conns[i].st == CONNECTING;
        if (stop && (!busy || now - stopped_at > timeout + 10)) break;
        double wait = stop ? 1 : next - now_ms();
        if (wait > 1) wait = 1;  // timeouts are checked at least every millisecond
        struct epoll_event evs[64];
        int n = epoll_wait(ep, evs, 64, wait < 0 ? 0 : (int)(wait + 0.999));
        for (int i = 0; i < n; ++i) on_event(evs[i].data.ptr, evs[i].events);
    }
    fclose(out);
    fprintf(stderr,
            "probe: %ld due at %.0f/s, %ld answered, %ld timed out (> %.0f ms), %ld errors\n",
            n_due, rate, n_ok, n_timeout, timeout, n_error);
    return 0;
}
