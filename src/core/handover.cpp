// The reload hand-over container: opaque per-protocol records and an fd table in a sealed memfd.
#include "duet/core/handover.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <unordered_set>

namespace duet {
namespace {

constexpr char kMagic[8] = {'D', 'U', 'E', 'T', 'H', 'O', '\r', '\n'};
constexpr std::size_t kHeader = 8 + 4 + 4 + 4;
constexpr std::size_t kRecordHead = 1 + 1 + 2 + 4;
constexpr std::size_t kMaxBlob = std::size_t(1) << 30;  // far past any real hand-over

bool write_all(int fd, const char* p, std::size_t n) {
    while (n > 0) {
        ssize_t w = ::write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        p += w;
        n -= std::size_t(w);
    }
    return true;
}

// Lifts an fd clear of 0-4 (3 and 4 become the listeners) and keeps it across execve.
int keep_across_exec(int fd) {
    if (fd < 5) {
        int moved = fcntl(fd, F_DUPFD, 5);
        if (moved < 0) return -errno;
        ::close(fd);
        fd = moved;
    }
    if (fcntl(fd, F_SETFD, 0) != 0) return -errno;
    return fd;
}

}  // namespace

std::string handover_check_line() {
    if (const char* v = getenv("DUET_TEST_HANDOVER_VERSIONS")) return std::string("handover=") + v;
    std::string line = "handover=";
    for (std::uint32_t f : kHandoverFormatsRead) {
        if (line.back() != '=') line += ',';
        line += std::to_string(f);
    }
    return line;
}

bool check_reads_format(std::string_view out, std::uint32_t format, std::string& seen) {
    seen = "none";
    std::size_t at = out.find("handover=");
    if (at == std::string_view::npos) return false;
    std::string_view list = out.substr(at + 9);
    list = list.substr(0, list.find_first_not_of("0123456789,"));
    seen = list.empty() ? "none" : std::string(list);
    while (!list.empty()) {
        std::size_t comma = list.find(',');
        if (list.substr(0, comma) == std::to_string(format)) return true;
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
    return false;
}

Fd open_handover_memfd() {
    return Fd(memfd_create("duet-handover", MFD_CLOEXEC | MFD_ALLOW_SEALING));
}

int write_handover(HandoverOut& out, Fd memfd) {
    // The fds first: their numbers in the table are the ones the next image will see.
    std::vector<int> numbers;
    for (std::size_t i = 0; i < out.fds.size(); ++i) {
        int fd = keep_across_exec(out.fds.at(i));
        numbers.push_back(fd);  // a failure (-errno) stays in the table: that record fails alone
    }
    out.fds.release_all();  // the numbers above own them now, until execve
    std::string blob(kMagic, sizeof kMagic);
    put_le(blob, kHandoverFormat, 4);
    put_le(blob, numbers.size(), 4);
    put_le(blob, out.records.size(), 4);
    for (int n : numbers) put_le(blob, std::uint32_t(n), 4);
    std::size_t index = 0;
    for (HandoverRecord& r : out.records) {
        ++index;
        if (index == out.corrupt && r.body.size() >= 6) {
            // The first field now claims more bytes than the record holds.
            std::memset(r.body.data() + 2, 0xff, 4);
        }
        blob += r.kind;
        blob += '\0';
        put_le(blob, r.version, 2);
        put_le(blob, r.body.size(), 4);
        blob += r.body;
    }
    int fd = memfd.get();
    errno = 0;
    if (!write_all(fd, blob.data(), blob.size()) ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
        int e = errno ? errno : EIO;
        for (int n : numbers)
            if (n >= 0) ::close(n);  // nobody will read them: the connections are cut
        return -e;
    }
    return keep_across_exec(memfd.release());
}

bool parse_handover(std::string_view blob, std::vector<int>& fds,
                    std::vector<HandoverIn::Record>& records, std::string& error) {
    fds.clear();
    records.clear();
    auto bad = [&](std::string why) {  // nothing half-read is left for the caller
        fds.clear();
        records.clear();
        error = std::move(why);
        return false;
    };
    if (blob.size() < kHeader || std::memcmp(blob.data(), kMagic, sizeof kMagic) != 0)
        return bad("not a hand-over container");
    std::uint64_t format = get_le(blob.data() + 8, 4);
    std::uint64_t fd_count = get_le(blob.data() + 12, 4);
    std::uint64_t record_count = get_le(blob.data() + 16, 4);
    bool known = false;
    for (std::uint32_t f : kHandoverFormatsRead) known = known || f == format;
    if (!known)
        return bad("hand-over format " + std::to_string(format) + " is not one this image reads");
    std::size_t at = kHeader;
    if (fd_count > (blob.size() - at) / 4) return bad("the fd table runs past the container");
    for (std::uint64_t i = 0; i < fd_count; ++i, at += 4)
        fds.push_back(static_cast<std::int32_t>(get_le(blob.data() + at, 4)));
    for (std::uint64_t i = 0; i < record_count; ++i) {
        if (blob.size() - at < kRecordHead)
            return bad("record " + std::to_string(i + 1) + " runs past the container");
        HandoverIn::Record r;
        r.kind = blob[at];
        r.version = static_cast<std::uint16_t>(get_le(blob.data() + at + 2, 2));
        std::uint64_t len = get_le(blob.data() + at + 4, 4);
        at += kRecordHead;
        if (len > blob.size() - at)
            return bad("record " + std::to_string(i + 1) + " runs past the container");
        r.body = blob.substr(at, std::size_t(len));
        at += std::size_t(len);
        records.push_back(r);
    }
    if (at != blob.size()) return bad("bytes after the last record");
    return true;
}

bool read_handover(int memfd, HandoverIn& in, std::string& error) {
    Fd own(memfd);
    in = HandoverIn{};
    struct stat st;
    int seals = fcntl(memfd, F_GET_SEALS);
    if (fstat(memfd, &st) != 0 || seals < 0 || !(seals & F_SEAL_WRITE) ||
        std::size_t(st.st_size) > kMaxBlob) {
        error = "DUET_HANDOVER_FD is not a sealed hand-over memfd";
        return false;
    }
    in.blob.resize(std::size_t(st.st_size));
    std::size_t got = 0;
    while (got < in.blob.size()) {
        ssize_t n = pread(memfd, in.blob.data() + got, in.blob.size() - got, off_t(got));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            error = std::string("reading the hand-over: ") + std::strerror(n < 0 ? errno : EIO);
            return false;
        }
        got += std::size_t(n);
    }
    std::vector<int> numbers;
    bool ok = parse_handover(std::string_view(in.blob.data(), in.blob.size()), numbers, in.records,
                             error);
    if (!ok) {
        // The records cannot be trusted, but an intact fd table still names what was passed:
        // closed below rather than left open (and inheritable) for the life of the process.
        bool ours = in.blob.size() >= kHeader &&
                    std::memcmp(in.blob.data(), kMagic, sizeof kMagic) == 0 &&
                    get_le(in.blob.data() + 8, 4) == kHandoverFormat;
        std::uint64_t count = ours ? get_le(in.blob.data() + 12, 4) : 0;
        if (count <= (in.blob.size() - std::min(in.blob.size(), kHeader)) / 4)
            for (std::uint64_t i = 0; i < count; ++i)
                numbers.push_back(
                    static_cast<std::int32_t>(get_le(in.blob.data() + kHeader + 4 * i, 4)));
    }
    std::unordered_set<int> seen;
    for (std::size_t i = 0; i < numbers.size(); ++i) {
        // Every passed fd is ours from now on, so none leaks into the --check child. A number
        // that cannot be a passed connection fd (stdio, the listeners, the memfd, a repeat, not
        // open) stays an empty slot and fails only the record that claims it.
        int n = numbers[i];
        bool usable =
            n >= 5 && n != memfd && seen.insert(n).second && fcntl(n, F_SETFD, FD_CLOEXEC) == 0;
        in.fds.add(Fd(usable ? n : -1));
    }
    if (!ok) {
        in.records.clear();
        in.fds.clear();
    }
    return ok;
}

}  // namespace duet
