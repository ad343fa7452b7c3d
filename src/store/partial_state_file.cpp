// A partial upload's state file (README "Resumable uploads"): its text ("duet-partial 1", the
// spec, the offset, the hash state), parsed strictly, and replaced durably: a reader or a restart
// sees the old whole file or the new whole file, never a mix.
#include "duet/store/partial_state_file.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "duet/core/clock.hpp"
#include "duet/core/text.hpp"

namespace duet {
namespace partial_detail {

// Replaces `name` in `dirfd` with `content` atomically and durably: a reader (or a restart)
// sees the old whole file or the new whole file. Write temp, fsync, rename, fsync dir.
int replace_file(int dirfd, const std::string& name, const std::string& content) {
    std::string tmp = name + ".tmp";
    int fd =
        ::openat(dirfd, tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return -errno;
    Fd f(fd);
    const char* p = content.data();
    std::size_t left = content.size();
    while (left > 0) {
        ssize_t n = ::write(fd, p, left);
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            ::unlinkat(dirfd, tmp.c_str(), 0);
            return -e;
        }
        p += n;
        left -= std::size_t(n);
    }
    if (::fsync(fd) != 0 || ::renameat(dirfd, tmp.c_str(), dirfd, name.c_str()) != 0) {
        int e = errno;
        ::unlinkat(dirfd, tmp.c_str(), 0);
        return -e;
    }
    return ::fsync(dirfd) == 0 ? 0 : -errno;
}

std::int64_t wall_now() {
    return wall_seconds();
}

std::string serialize(const Partial& p) {
    const PartialSpec& s = p.spec;
    std::string out = "duet-partial 1\n";
    auto kv = [&](const char* k, const std::string& v) { ((out += k) += ' ') += v + "\n"; };
    kv("name", s.name);
    kv("length", s.length == kUnknownLength ? "-" : std::to_string(s.length));
    kv("offset", std::to_string(p.offset));
    kv("token", s.token_hash.empty() ? "-" : s.token_hash);
    kv("expected", s.has_expected ? to_hex(s.expected) : "-");
    using K = Precondition::Kind;
    kv("precond", s.pre.kind == K::None           ? "-"
                  : s.pre.kind == K::MustNotExist ? "absent"
                  : s.pre.kind == K::MustExist    ? "exists"
                                                  : "match:" + to_hex(s.pre.etag));
    kv("created", std::to_string(p.created));
    kv("touched", std::to_string(p.touched));
    kv("sha", sha_state_text(p.sha));
    return out;
}

std::string new_id() {
    std::uint8_t raw[16];
    std::size_t got = 0;
    while (got < sizeof raw) {
        ssize_t n = ::getrandom(raw + got, sizeof raw - got, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return {};
        }
        got += std::size_t(n);
    }
    static const char hex[] = "0123456789abcdef";
    std::string id;
    for (std::uint8_t b : raw) {
        id += hex[b >> 4];
        id += hex[b & 15];
    }
    return id;
}

bool valid_id(std::string_view id) {
    if (id.size() != 32) return false;
    return std::all_of(id.begin(), id.end(),
                       [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// Sizes and offsets are file offsets (off_t): anything past 2^63-1 is a damaged file.
bool to_u64(std::string_view s, std::uint64_t& v) {
    return parse_decimal(s, std::uint64_t(INT64_MAX), v);
}

bool parse_state(std::string_view text, Partial& p) {
    if (text.substr(0, 15) != "duet-partial 1\n") return false;
    text.remove_prefix(15);
    int seen = 0;
    while (!text.empty()) {
        std::size_t nl = text.find('\n');
        if (nl == std::string_view::npos) return false;  // torn: cannot happen after rename
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl + 1);
        std::size_t sp = line.find(' ');
        if (sp == std::string_view::npos) return false;
        std::string_view k = line.substr(0, sp), v = line.substr(sp + 1);
        std::uint64_t n = 0;
        PartialSpec& s = p.spec;
        if (k == "name") {
            if (!valid_path(v)) return false;
            s.name = std::string(v);
        } else if (k == "length") {
            if (v == "-")
                s.length = kUnknownLength;
            else if (!to_u64(v, s.length))
                return false;
        } else if (k == "offset") {
            if (!to_u64(v, p.offset)) return false;
        } else if (k == "token") {
            s.token_hash = v == "-" ? std::string() : std::string(v);
        } else if (k == "expected") {
            s.has_expected = v != "-";
            if (s.has_expected && !parse_hex_digest(v, s.expected)) return false;
        } else if (k == "precond") {
            using K = Precondition::Kind;
            if (v == "-") {
                s.pre.kind = K::None;
            } else if (v == "absent") {
                s.pre.kind = K::MustNotExist;
            } else if (v == "exists") {
                s.pre.kind = K::MustExist;
            } else if (v.substr(0, 6) == "match:" && parse_hex_digest(v.substr(6), s.pre.etag)) {
                s.pre.kind = K::MustMatch;
            } else {
                return false;
            }
        } else if (k == "created" || k == "touched") {
            if (!to_u64(v, n)) return false;
            (k == "created" ? p.created : p.touched) = std::int64_t(n);
        } else if (k == "sha") {
            if (!sha_state_from_text(v, p.sha)) return false;
        } else {
            continue;  // a later version's field: ignore
        }
        ++seen;
    }
    // The hash state must describe exactly the bytes the offset announces.
    return seen >= 9 && p.sha.bytes() == p.offset &&
           (p.spec.length == kUnknownLength || p.offset <= p.spec.length);
}

int read_small(int dirfd, const std::string& name, std::string& out) {
    int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return -errno;
    Fd f(fd);
    char buf[4096];
    out.clear();
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (n == 0) return 0;
        out.append(buf, std::size_t(n));
        if (out.size() > 16384) return -EFBIG;
    }
}

}  // namespace partial_detail
}  // namespace duet
