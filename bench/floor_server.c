// floor_server PORT: the least a server can do before its first answer — bind, listen, accept,
// answer 200 to anything. bench/footprint.sh starts it under the same helper as duet, so the
// start-up figure can be read against this machine's floor for fork + exec + connect.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char** argv) {
    if (argc < 2) return 2;
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((unsigned short)atoi(argv[1]))};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (bind(s, (struct sockaddr*)&a, sizeof a) != 0 || listen(s, 128) != 0) return 1;
    const char* answer = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0) continue;
        char buf[1024];
        if (read(c, buf, sizeof buf) > 0 && write(c, answer, strlen(answer)) < 0) return 1;
        close(c);
    }
}
