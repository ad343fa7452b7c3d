// lifecycle stop N RUNS EXE ARGS...   : RUNS times, start EXE ARGS (pinned to CPU 0), wait for its
//     ready line, open N keep-alive connections (one GET / each, then idle), SIGINT it and print
//     "stop_ms EXIT_STATUS" (SIGINT to exit, from waitpid).
// lifecycle reload RUNS SRC EXE ARGS... : start EXE ARGS (which should include --reload), then RUNS
//     times `cp -f SRC EXE` and print "reload_ms cp_ms": ms from cp's exit to the ready line of the
//     next generation, and how long cp itself took.
#define _GNU_SOURCE
#include <arpa/inet.h>
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

#include "http_client.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static FILE* err_stream;
static pid_t spawn(char** argv) {
    int p[2];
    if (pipe(p) < 0) {
        perror("pipe");
        exit(1);
    }
    pid_t pid = fork();
    if (pid == 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(0, &set);
        sched_setaffinity(0, sizeof set, &set);
        dup2(p[1], 2);
        close(p[0]);
        close(p[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    err_stream = fdopen(p[0], "r");
    return pid;
}

// reads stderr until the ready line of generation gen; returns its HTTP port
static int wait_ready(int gen) {
    char line[1024], want[32];
    snprintf(want, sizeof want, " generation=%d\n", gen);
    while (fgets(line, sizeof line, err_stream)) {
        if (getenv("LIFECYCLE_ECHO")) fprintf(stderr, "%.3f %s", now_ms(), line);
        if (strncmp(line, "duet: ready ", 12) == 0 && strstr(line, want)) {
            char* files = strstr(line, " files=");
            char* colon = files;
            while (colon && colon > line && *colon != ':') colon--;
            return colon ? atoi(colon + 1) : -1;
        }
    }
    fprintf(stderr, "no ready line for generation %d\n", gen);
    exit(1);
}

int main(int argc, char** argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: see bench/lifecycle.c\n");
        return 2;
    }
    int runs = atoi(argv[3 - (strcmp(argv[1], "reload") == 0)]);
    if (strcmp(argv[1], "stop") == 0) {
        int n = atoi(argv[2]);
        int* fds = calloc((size_t)n + 1, sizeof *fds);
        const char* get = "GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
        for (int r = 0; r < runs; r++) {
            pid_t pid = spawn(argv + 4);
            int port = wait_ready(0);
            struct sockaddr_in sa = {.sin_family = AF_INET,
                                     .sin_port = htons((unsigned short)port)};
            inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
            for (int i = 0; i < n; i++) {
                fds[i] = socket(AF_INET, SOCK_STREAM, 0);
                if (connect(fds[i], (struct sockaddr*)&sa, sizeof sa) < 0 ||
                    write(fds[i], get, strlen(get)) != (ssize_t)strlen(get) ||
                    read_response(fds[i], NULL) < 0) {
                    fprintf(stderr, "connection %d failed\n", i);
                    return 1;
                }
            }
            usleep(200000);
            double t0 = now_ms();
            kill(pid, SIGINT);
            int st;
            waitpid(pid, &st, 0);
            double t1 = now_ms();
            printf("%.3f %d\n", t1 - t0, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
            fflush(stdout);
            for (int i = 0; i < n; i++) close(fds[i]);
            fclose(err_stream);
        }
        return 0;
    }
    // reload RUNS SRC EXE ARGS...
    const char* src = argv[3];
    pid_t pid = spawn(argv + 4);
    wait_ready(0);
    for (int r = 1; r <= runs; r++) {
        usleep(300000);
        double t0 = now_ms();
        pid_t cp = fork();
        if (cp == 0) {
            execl("/bin/cp", "cp", "-f", src, argv[4], (char*)NULL);
            _exit(127);
        }
        int st;
        waitpid(cp, &st, 0);
        double t1 = now_ms();
        if (getenv("LIFECYCLE_ECHO")) fprintf(stderr, "%.3f cp %.3f done\n", t1, t0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "cp failed\n");
            return 1;
        }
        wait_ready(r);
        double t2 = now_ms();
        printf("%.3f %.3f\n", t2 - t1, t1 - t0);
        fflush(stdout);
    }
    kill(pid, SIGINT);
    int st;
    waitpid(pid, &st, 0);
    return 0;
}
