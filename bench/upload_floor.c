// upload_floor DIR NAME < DATA: the disk work of one duet upload and nothing else, as a yardstick
// for upload throughput: read stdin in 64 KiB pieces (duet's socket buffer), write them to an
// O_TMPFILE file in DIR, start writeback every 8 MiB with sync_file_range(SYNC_FILE_RANGE_WRITE)
// (as src/store/store.cpp does), then fsync the file, link it under a temporary name, rename it
// over NAME and fsync DIR. No hashing, no network: `openssl dgst` is the yardstick for the hashing.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define PIECE (64 << 10)
#define WRITEBACK_CHUNK (8ull << 20)

static int die(const char* what) {
    perror(what);
    return 1;
}

int main(int argc, char** argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: upload_floor DIR NAME < DATA\n");
        return 2;
    }
    int dir = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) return die("open DIR");
    int fd = openat(dir, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) return die("O_TMPFILE");
    static char buf[PIECE];
    unsigned long long size = 0, synced = 0;
    for (;;) {
        ssize_t n = read(0, buf, sizeof buf);
        if (n < 0) return die("read");
        if (n == 0) break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(fd, buf + off, (size_t)(n - off));
            if (w <= 0) return die("write");
            off += w;
        }
        size += (unsigned long long)n;
        if (size - synced >= WRITEBACK_CHUNK) {
            sync_file_range(fd, (off64_t)synced, (off64_t)(size - synced), SYNC_FILE_RANGE_WRITE);
            synced = size;
        }
    }
    if (fsync(fd) != 0) return die("fsync file");
    char proc[64], tmp[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    snprintf(tmp, sizeof tmp, ".floor-tmp-%d", getpid());
    if (linkat(AT_FDCWD, proc, dir, tmp, AT_SYMLINK_FOLLOW) != 0) return die("linkat");
    if (renameat(dir, tmp, dir, argv[2]) != 0) return die("renameat");
    if (fsync(dir) != 0) return die("fsync dir");
    printf("%llu\n", size);
    return 0;
}
