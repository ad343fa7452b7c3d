// idle_conns HOST PORT N [req]: open N TCP connections to HOST:PORT; with "req", send one complete
// GET / on each and read its whole response (so each is an idle keep-alive connection). Prints
// "held N" on stdout once all are open, then holds them until killed. Reconnects nothing.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_client.h"

int main(int argc, char** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: idle_conns HOST PORT N [req]\n");
        return 2;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((unsigned short)atoi(argv[2]))};
    inet_pton(AF_INET, argv[1], &sa.sin_addr);
    int n = atoi(argv[3]);
    int req = argc > 4 && strcmp(argv[4], "req") == 0;
    const char* get = "GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
    for (int i = 0; i < n; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) {
            perror("socket");
            return 1;
        }
        if (connect(fd, (struct sockaddr*)&sa, sizeof sa) < 0) {
            perror("connect");
            return 1;
        }
        if (req) {
            if (write(fd, get, strlen(get)) != (ssize_t)strlen(get) ||
                read_response(fd, NULL) != 0) {
                fprintf(stderr, "request %d failed\n", i);
                return 1;
            }
        }
    }
    printf("held %d\n", n);
    fflush(stdout);
    for (;;) pause();
}
