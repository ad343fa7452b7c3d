// rawcopy recv PORT | rawcopy send PORT FILE: the loopback ceiling without any protocol.
// "recv" listens on 127.0.0.1:PORT, prints "listening", accepts one connection and reads it into a
// 256 KiB buffer until EOF, then prints the byte count. "send" connects and sendfile()s FILE whole.
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
#include <unistd.h>

int main(int argc, char** argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: rawcopy recv PORT | rawcopy send PORT FILE\n");
        return 2;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((unsigned short)atoi(argv[2]))};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (strcmp(argv[1], "recv") == 0) {
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, (struct sockaddr*)&sa, sizeof sa) < 0 || listen(fd, 1) < 0) {
            perror("bind");
            return 1;
        }
        printf("listening\n");
        fflush(stdout);
        int c = accept(fd, NULL, NULL);
        static char buf[256 << 10];
        long long total = 0;
        ssize_t n;
        while ((n = read(c, buf, sizeof buf)) > 0) total += n;
        printf("%lld\n", total);
        return 0;
    }
    if (argc < 4) return 2;
    int f = open(argv[3], O_RDONLY);
    struct stat st;
    if (f < 0 || fstat(f, &st) < 0) {
        perror(argv[3]);
        return 1;
    }
    if (connect(fd, (struct sockaddr*)&sa, sizeof sa) < 0) {
        perror("connect");
        return 1;
    }
    off_t off = 0;
    while (off < st.st_size) {
        ssize_t n = sendfile(fd, f, &off, (size_t)(st.st_size - off));
        if (n <= 0) {
            perror("sendfile");
            return 1;
        }
    }
    return 0;
}
