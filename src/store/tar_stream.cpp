#include "duet/store/tar_stream.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "duet/store/names.hpp"
#include "duet/store/store_paths.hpp"

namespace duet {
namespace {

constexpr std::size_t kBlock = 512;
constexpr std::uint64_t kMaxOctalSize = (std::uint64_t(1) << 33) - 1;  // 11 octal digits

std::uint64_t padded(std::uint64_t n) {
    return (n + kBlock - 1) / kBlock * kBlock;
}

void octal(char* field, std::size_t width, std::uint64_t v) {
    // width - 1 digits and a NUL, as POSIX wants.
    field[width - 1] = '\0';
    for (std::size_t i = width - 1; i-- > 0; v >>= 3) field[i] = char('0' + (v & 7));
}

bool needs_pax(const TarEntry& e) {
    return e.name.size() > 100 || (!e.dir && e.size > kMaxOctalSize);
}

// "LEN key=value\n", LEN counting itself.
std::string pax_record(std::string_view key, std::string_view value) {
    std::size_t body = 1 + key.size() + 1 + value.size() + 1;
    std::size_t len = body + 1;
    while (std::to_string(len).size() + body != len) len = std::to_string(len).size() + body;
    return std::to_string(len) + " " + std::string(key) + "=" + std::string(value) + "\n";
}

std::string pax_data(const TarEntry& e) {
    std::string d;
    if (e.name.size() > 100) d += pax_record("path", e.name);
    if (!e.dir && e.size > kMaxOctalSize) d += pax_record("size", std::to_string(e.size));
    return d;
}

std::string ustar_block(std::string_view name, char type, std::uint64_t size, std::int64_t mtime,
                        unsigned mode) {
    std::string b(kBlock, '\0');
    char* h = b.data();
    std::memcpy(h, name.data(), std::min<std::size_t>(name.size(), 100));
    octal(h + 100, 8, mode);
    octal(h + 108, 8, 0);  // uid
    octal(h + 116, 8, 0);  // gid
    octal(h + 124, 12, size > kMaxOctalSize ? 0 : size);
    octal(h + 136, 12, std::uint64_t(mtime < 0 ? 0 : mtime));
    h[156] = type;
    std::memcpy(h + 257, "ustar", 6);  // with its NUL
    std::memcpy(h + 263, "00", 2);
    std::memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (std::size_t i = 0; i < kBlock; ++i) sum += static_cast<unsigned char>(h[i]);
    octal(h + 148, 7, sum);  // six digits and a NUL, then a space
    h[155] = ' ';
    return b;
}

}  // namespace

std::string tar_header(const TarEntry& e) {
    std::int64_t mtime = e.mtime_ns / 1000000000;
    std::string out;
    if (needs_pax(e)) {
        std::string data = pax_data(e);
        out += ustar_block("PaxHeader", 'x', data.size(), mtime, 0644);
        out += data;
        out.resize(padded(out.size()), '\0');
    }
    out += ustar_block(e.name, e.dir ? '5' : '0', e.dir ? 0 : e.size, mtime, e.dir ? 0755 : 0644);
    return out;
}

std::uint64_t tar_length(const std::vector<TarEntry>& entries) {
    std::uint64_t n = 2 * kBlock;
    for (const TarEntry& e : entries) {
        n += kBlock;
        if (needs_pax(e)) n += kBlock + padded(pax_data(e).size());
        if (!e.dir) n += padded(e.size);
    }
    return n;
}

TarStream::TarStream(int store_dir, std::vector<TarEntry> entries, Helpers* helpers)
    : dir_(store_dir), helpers_(helpers), entries_(std::move(entries)) {
    length_ = tar_length(entries_);
}

void TarStream::warm_next() {
    if (!helpers_) return;
    std::size_t i = at_ + 1;
    while (i < entries_.size() && entries_[i].dir) ++i;
    if (i >= entries_.size()) return;
    auto dir = std::make_shared<Fd>(::fcntl(dir_, F_DUPFD_CLOEXEC, 0));
    if (!*dir) return;
    auto job = std::make_unique<Helpers::Job>();
    job->background = true;  // nobody waits for it
    job->work = [dir, path = entries_[i].path] {
        int f = store_paths::open_beneath(dir->get(), path, O_PATH | O_CLOEXEC);
        if (f >= 0) ::close(f);
    };
    job->done = [] {};
    helpers_->submit(std::move(job));
}

void TarStream::next_entry() {
    pending_.clear();
    pending_off_ = 0;
    if (started_) {
        const TarEntry& prev = entries_[at_];
        // The previous file's padding to the next block.
        if (!prev.dir) pending_.assign(padded(prev.size) - prev.size, '\0');
        ++at_;
    }
    started_ = true;
    if (at_ < entries_.size()) {
        pending_ += tar_header(entries_[at_]);
        data_due_ = !entries_[at_].dir && entries_[at_].size > 0;
    } else {
        pending_.append(2 * kBlock, '\0');
        data_due_ = false;
    }
}

std::size_t TarStream::fill(char* p, std::size_t room) {
    std::size_t n = 0;
    while (n < room && !done_ && !failed_) {
        if (pending_off_ == pending_.size()) {
            if (data_due_) break;  // the file's bytes: take_file
            if (started_ && at_ >= entries_.size()) {
                done_ = true;
                break;
            }
            next_entry();
            continue;
        }
        std::size_t take = std::min(room - n, pending_.size() - pending_off_);
        std::memcpy(p + n, pending_.data() + pending_off_, take);
        pending_off_ += take;
        n += take;
    }
    return n;
}

bool TarStream::take_file(Fd& fd, off_t& offset, std::uint64_t& length) {
    if (!data_due_ || pending_off_ != pending_.size() || failed_) return false;
    const TarEntry& e = entries_[at_];
    data_due_ = false;
    // From the caches (the snapshot's read, or warm_next, just looked it up); should they have
    // let it go, the lookup waits for the disk here, on the loop.
    constexpr int kFlags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
    int f = store_paths::open_beneath_cached(dir_, e.path, kFlags);
    if (f == -EAGAIN || f == -ENOSYS || f == -EINVAL || f == -EPERM)
        f = store_paths::open_beneath(dir_, e.path, kFlags);
    warm_next();
    struct stat st;
    if (f < 0 || ::fstat(f, &st) != 0 || !S_ISREG(st.st_mode) ||
        std::uint64_t(st.st_size) != e.size ||
        std::int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec != e.mtime_ns) {
        // Changed or gone since the snapshot: never other bytes under the name announced.
        if (f >= 0) ::close(f);
        failed_ = true;
        return false;
    }
    fd.reset(f);
    offset = 0;
    length = e.size;
    return true;
}

namespace {

void put_u64(std::string& out, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out += char((v >> (8 * i)) & 0xff);
}
void put_str(std::string& out, std::string_view s) {
    put_u64(out, s.size());
    out += s;
}
struct Reader {
    std::string_view in;
    bool ok = true;
    std::uint64_t u64() {
        if (in.size() < 8) return ok = false, 0;
        std::uint64_t v = 0;
        for (int i = 0; i < 8; ++i)
            v |= std::uint64_t(static_cast<unsigned char>(in[i])) << (8 * i);
        in.remove_prefix(8);
        return v;
    }
    std::string str(std::size_t max) {
        std::uint64_t n = u64();
        if (!ok || n > max || n > in.size()) return ok = false, std::string();
        std::string s(in.substr(0, n));
        in.remove_prefix(n);
        return s;
    }
};

constexpr std::string_view kMagic = "duet-tar-1";

}  // namespace

bool TarStream::encode(std::string& out) const {
    if (failed_) return false;
    out.assign(kMagic);
    put_u64(out, (started_ ? 1 : 0) | (data_due_ ? 2 : 0) | (done_ ? 4 : 0));
    put_str(out, std::string_view(pending_).substr(pending_off_));
    std::size_t from = at_ < entries_.size() ? at_ : entries_.size();
    put_u64(out, entries_.size() - from);
    for (std::size_t i = from; i < entries_.size(); ++i) {
        const TarEntry& e = entries_[i];
        put_str(out, e.name);
        put_str(out, e.path);
        put_u64(out, e.size);
        put_u64(out, std::uint64_t(e.mtime_ns));
        put_u64(out, e.dir ? 1 : 0);
    }
    return true;
}

std::unique_ptr<TarStream> TarStream::decode(int store_dir, std::string_view bytes,
                                             Helpers* helpers) {
    if (bytes.substr(0, kMagic.size()) != kMagic) return nullptr;
    Reader r{bytes.substr(kMagic.size())};
    std::uint64_t flags = r.u64();
    std::string pending = r.str(64 * 1024);
    std::uint64_t n = r.u64();
    if (!r.ok || flags > 7 || n > r.in.size() / 40) return nullptr;  // 40: an entry's least bytes
    std::vector<TarEntry> entries;
    entries.reserve(n);
    for (std::uint64_t i = 0; i < n && r.ok; ++i) {
        TarEntry e;
        e.name = r.str(kMaxPathBytes + 1);
        e.path = r.str(kMaxPathBytes);
        e.size = r.u64();
        e.mtime_ns = std::int64_t(r.u64());
        std::uint64_t dir = r.u64();
        if (!r.ok || dir > 1 || !valid_path(e.path) || e.name.empty()) return nullptr;
        e.dir = dir == 1;
        entries.push_back(std::move(e));
    }
    if (!r.ok || !r.in.empty()) return nullptr;
    auto t = std::make_unique<TarStream>(store_dir, std::move(entries), helpers);
    t->started_ = flags & 1;
    t->data_due_ = flags & 2;
    t->done_ = flags & 4;
    t->pending_ = std::move(pending);
    t->pending_off_ = 0;
    t->at_ = 0;
    if (t->entries_.empty() && t->started_ && !t->pending_.empty()) t->at_ = 0;
    return t;
}

}  // namespace duet
