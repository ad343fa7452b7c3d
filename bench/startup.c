// startup RUNS PORT EXE [ARGS...]: RUNS times, fork+exec EXE ARGS (pinned to CPU 0, stderr
// to /dev/null) and poll GET / on 127.0.0.1:PORT as fast as possible; print the milliseconds from
// fork to the first complete 200 answer, one per line. Then SIGINT the server and reap it.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: startup RUNS PORT EXE [ARGS...]\n");
        return 2;
    }
    int runs = atoi(argv[1]);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((unsigned short)atoi(argv[2]))};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    const char* get = "GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
    for (int r = 0; r < runs; r++) {
        double t0 = now_ms();
        pid_t pid = fork();
        if (pid == 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(0, &set);
            sched_setaffinity(0, sizeof set, &set);
            int dn = open("/dev/null", O_WRONLY);
            dup2(dn, 2);
            execv(argv[3], argv + 3);
            _exit(127);
        }
        // Move the child to CPU 0 from here as well: left to itself it first has to get a turn
        // on this CPU, which the polling loop below keeps busy for a whole scheduler tick.
        cpu_set_t server_cpu;
        CPU_ZERO(&server_cpu);
        CPU_SET(0, &server_cpu);
        sched_setaffinity(pid, sizeof server_cpu, &server_cpu);
        double t1 = -1;
        while (t1 < 0 && now_ms() - t0 < 5000) {
            int fd = socket(AF_INET, SOCK_STREAM, 0);
            if (connect(fd, (struct sockaddr*)&sa, sizeof sa) == 0 &&
                write(fd, get, strlen(get)) == (ssize_t)strlen(get)) {
                char buf[1024];
                ssize_t n = read(fd, buf, sizeof buf - 1);
                if (n > 12 && memcmp(buf, "HTTP/1.1 200", 12) == 0) t1 = now_ms();
            }
            close(fd);
        }
        kill(pid, SIGINT);
        int st;
        waitpid(pid, &st, 0);
        if (t1 < 0) {
            fprintf(stderr, "no answer within 5 s\n");
            return 1;
        }
        printf("%.3f\n", t1 - t0);
        fflush(stdout);
        usleep(50000);
    }
    return 0;
}
