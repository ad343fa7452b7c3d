// Tiny driver for bench/sha256.sh: prints the SHA-256 of a file, like `sha256sum FILE`.
// `--portable` forces the portable compression function; `--buf N` reads N bytes at a time
// (default 1 MiB; `openssl dgst` reads 8 KiB, so the comparison uses --buf 8192).
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "duet/core/sha256.hpp"

int main(int argc, char** argv) {
    int arg = 1;
    if (arg < argc && std::string_view(argv[arg]) == "--portable") {
        duet::sha256_impl::force_portable(true);
        ++arg;
    }
    std::size_t buf_size = 1 << 20;
    if (arg + 1 < argc && std::string_view(argv[arg]) == "--buf") {
        buf_size = std::strtoul(argv[arg + 1], nullptr, 10);
        arg += 2;
    }
    if (arg + 1 != argc || buf_size == 0) {
        std::fprintf(stderr, "usage: %s [--portable] [--buf N] FILE\n", argv[0]);
        return 2;
    }
    int fd = open(argv[arg], O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        std::fprintf(stderr, "%s: %s\n", argv[arg], std::strerror(errno));
        return 1;
    }
    std::vector<char> buf(buf_size);
    duet::Sha256 h;
    for (;;) {
        ssize_t n = read(fd, buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            std::fprintf(stderr, "read: %s\n", std::strerror(errno));
            return 1;
        }
        if (n == 0) break;
        h.update(buf.data(), static_cast<std::size_t>(n));
    }
    close(fd);
    std::printf("%s  %s\n", duet::to_hex(h.finish()).c_str(), argv[arg]);
    return 0;
}
