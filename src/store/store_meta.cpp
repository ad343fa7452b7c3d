// Digest records for stored files: user xattr first, sidecar directory as the fallback, and a
// one-time read of the bytes when neither matches the file any more. See store_meta.hpp.
#include "duet/store/store_meta.hpp"

#include <fcntl.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdio>

#include "duet/store/names.hpp"
#include "duet/store/store.hpp"
#include "duet/store/store_paths.hpp"

namespace duet {

namespace store_detail {

std::string temp_name(unsigned& seq) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%d-%u", static_cast<int>(::getpid()), seq++);
    return std::string(kTmpPrefix) + buf;
}

}  // namespace store_detail

namespace {

using store_detail::is_temp_name;

// On-disk record: magic, digest, then size, inode, mtime seconds and nanoseconds as little-endian
// 64-bit fields. Fixed size, so a torn or foreign value is recognised by its length or magic and
// the digest is simply recomputed.
constexpr char kMetaMagic[4] = {'D', 'S', 'M', '1'};
static_assert(DigestMeta::kRecordSize == sizeof kMetaMagic + 32 + 4 * 8);

void put_u64(std::uint8_t* p, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

std::uint64_t get_u64(const std::uint8_t* p) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
    return v;
}

bool is_unsupported(int err) {
    return err == ENOTSUP || err == EOPNOTSUPP;
}

bool same_mtime(const struct stat& a, const struct stat& b) {
    return a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec;
}

// Reads the whole file with pread, so the caller's file offset stays at 0 for serving.
// `stable`: exactly st_size bytes were read and size/mtime did not change meanwhile, i.e. the
// digest belongs to the file described by `st` and may be recorded.
int hash_file(int fd, const struct stat& st, Digest& out, bool& stable) {
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    Sha256 sha;
    unsigned char buf[64 * 1024];
    std::uint64_t off = 0;
    for (;;) {
        ssize_t n = ::pread(fd, buf, sizeof buf, static_cast<off_t>(off));
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (n == 0) break;
        sha.update(buf, static_cast<std::size_t>(n));
        off += static_cast<std::uint64_t>(n);
    }
    out = sha.finish();
    struct stat after;
    stable = off == static_cast<std::uint64_t>(st.st_size) && ::fstat(fd, &after) == 0 &&
             after.st_size == st.st_size && same_mtime(after, st);
    return 0;
}

bool write_all(int fd, const void* data, std::size_t len) {
    const char* p = static_cast<const char*>(data);
    while (len > 0) {
        ssize_t n = ::write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        p += n;
        len -= static_cast<std::size_t>(n);
    }
    return true;
}

}  // namespace

DigestMeta::Record DigestMeta::record_for(const struct stat& st, const Digest& d) {
    Record r;
    r.sha256 = d;
    r.size = static_cast<std::uint64_t>(st.st_size);
    r.ino = static_cast<std::uint64_t>(st.st_ino);
    r.mtime_sec = st.st_mtim.tv_sec;
    r.mtime_nsec = st.st_mtim.tv_nsec;
    return r;
}

void DigestMeta::encode(const Record& r, std::uint8_t* out) {
    std::memcpy(out, kMetaMagic, sizeof kMetaMagic);
    std::uint8_t* p = out + sizeof kMetaMagic;
    std::memcpy(p, r.sha256.data(), 32);
    put_u64(p + 32, r.size);
    put_u64(p + 40, r.ino);
    put_u64(p + 48, static_cast<std::uint64_t>(r.mtime_sec));
    put_u64(p + 56, static_cast<std::uint64_t>(r.mtime_nsec));
}

bool DigestMeta::decode(const std::uint8_t* buf, std::size_t len, Record& r) {
    if (len != kRecordSize || std::memcmp(buf, kMetaMagic, sizeof kMetaMagic) != 0) return false;
    const std::uint8_t* p = buf + sizeof kMetaMagic;
    std::memcpy(r.sha256.data(), p, 32);
    r.size = get_u64(p + 32);
    r.ino = get_u64(p + 40);
    r.mtime_sec = static_cast<std::int64_t>(get_u64(p + 48));
    r.mtime_nsec = static_cast<std::int64_t>(get_u64(p + 56));
    return true;
}

// The xattr travels with the inode, so its inode number is not compared (a `cp -a` or a restore
// from backup keeps a valid record); a sidecar record is keyed by name only, so a different file
// renamed into place must not inherit it.
bool DigestMeta::matches(const Record& r, const struct stat& st, bool check_ino) {
    return r.size == static_cast<std::uint64_t>(st.st_size) && r.mtime_sec == st.st_mtim.tv_sec &&
           r.mtime_nsec == st.st_mtim.tv_nsec &&
           (!check_ino || r.ino == static_cast<std::uint64_t>(st.st_ino));
}

void DigestMeta::attach(int store_dirfd) {
    dirfd_ = store_dirfd;
    side_.reset();
    xattr_ok_ = true;
    if (sidecar_dir(false) >= 0) tidy_sidecar_dir();
}

bool DigestMeta::xattr_record(int fd, const struct stat& st, Digest& out) {
    std::uint8_t buf[kRecordSize + 1];
    ssize_t n = ::fgetxattr(fd, kXattr, buf, sizeof buf);
    Record r;
    if (n < 0 || !decode(buf, static_cast<std::size_t>(n), r) || !matches(r, st, false))
        return false;
    out = r.sha256;
    return true;
}

bool DigestMeta::write_xattr_record(int fd, const struct stat& st, const Digest& d) {
    std::uint8_t buf[kRecordSize];
    encode(record_for(st, d), buf);
    return ::fsetxattr(fd, kXattr, buf, sizeof buf, 0) == 0;
}

std::string DigestMeta::sidecar_name(std::string_view path) {
    std::string s(path);
    for (char& c : s)
        if (c == '/') c = '\\';
    return s;
}

std::string DigestMeta::path_of_sidecar(std::string_view sidecar) {
    std::string s(sidecar);
    for (char& c : s)
        if (c == '\\') c = '/';
    return s;
}

bool DigestMeta::sidecar_record(int side_dirfd, const char* path, const struct stat& st,
                                Digest& out) {
    if (side_dirfd < 0) return false;
    Fd fd(::openat(side_dirfd, sidecar_name(path).c_str(),
                   O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    if (!fd) return false;
    std::uint8_t buf[kRecordSize + 1];
    ssize_t n;
    do n = ::read(fd.get(), buf, sizeof buf);
    while (n < 0 && errno == EINTR);
    Record r;
    if (n <= 0 || !decode(buf, static_cast<std::size_t>(n), r) || !matches(r, st, true))
        return false;
    out = r.sha256;
    return true;
}

int DigestMeta::digest(std::string_view name, int fd, const struct stat& st, Digest& out,
                       bool may_hash) {
    Record r;
    if (read_xattr(fd, r) && matches(r, st, false)) {
        out = r.sha256;
        return 0;
    }
    if (read_sidecar(name, r) && matches(r, st, true)) {
        out = r.sha256;
        return 0;
    }
    if (!may_hash) return -EINPROGRESS;
    bool stable = false;
    int rc = hash_file(fd, st, out, stable);
    if (rc < 0) return rc;
    // A file still being written by hand gets no record; the next look reads it again.
    if (stable) remember(name, fd, record_for(st, out));
    return 0;
}

int DigestMeta::record_new(int fd, const struct stat& st, const Digest& d) {
    if (!xattr_ok_) return 1;
    std::uint8_t buf[kRecordSize];
    encode(record_for(st, d), buf);
    if (::fsetxattr(fd, kXattr, buf, sizeof buf, 0) == 0) return 0;
    int e = errno;
    if (is_unsupported(e)) xattr_ok_ = false;
    if (is_unsupported(e) || e == EPERM || e == EACCES) return 1;
    return -e;
}

void DigestMeta::published(std::string_view name, const struct stat& st, const Digest& d,
                           bool in_xattr) {
    if (!in_xattr) {
        write_sidecar(name, record_for(st, d));
        return;
    }
    // A sidecar record left from an earlier fallback would be ignored anyway (inode differs);
    // dropping it keeps the directory small.
    if (side_) ::unlinkat(side_.get(), sidecar_name(name).c_str(), 0);
}

void DigestMeta::forget(std::string_view name) {
    if (side_) ::unlinkat(side_.get(), sidecar_name(name).c_str(), 0);
}

void DigestMeta::remember(std::string_view name, int fd, const Record& r) {
    if (xattr_ok_) {
        // Setting a user xattr needs write permission on the file (or ownership rules), not a
        // writable fd, so the O_RDONLY fd we read through is enough. It changes ctime, not mtime.
        std::uint8_t buf[kRecordSize];
        encode(r, buf);
        if (::fsetxattr(fd, kXattr, buf, sizeof buf, 0) == 0) return;
        if (is_unsupported(errno)) xattr_ok_ = false;
    }
    write_sidecar(name, r);
}

bool DigestMeta::read_xattr(int fd, Record& r) {
    if (!xattr_ok_) return false;
    std::uint8_t buf[kRecordSize + 1];
    ssize_t n = ::fgetxattr(fd, kXattr, buf, sizeof buf);
    if (n < 0) {
        if (is_unsupported(errno)) xattr_ok_ = false;
        return false;
    }
    return decode(buf, static_cast<std::size_t>(n), r);
}

bool DigestMeta::read_sidecar(std::string_view name, Record& r) {
    if (!side_) return false;
    Fd fd(::openat(side_.get(), sidecar_name(name).c_str(),
                   O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    if (!fd) return false;
    std::uint8_t buf[kRecordSize + 1];
    ssize_t n;
    do n = ::read(fd.get(), buf, sizeof buf);
    while (n < 0 && errno == EINTR);
    return n > 0 && decode(buf, static_cast<std::size_t>(n), r);
}

// Written to a temporary name and renamed over, so a reader sees a whole old or a whole new
// record. Not fsynced: a record lost in a crash is only a cache miss (recomputed on next read).
void DigestMeta::write_sidecar(std::string_view name, const Record& r) {
    int dir = sidecar_dir(true);
    if (dir < 0) return;
    std::uint8_t buf[kRecordSize];
    encode(r, buf);
    std::string tmp = store_detail::temp_name(tmp_seq_);
    Fd fd(::openat(dir, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (!fd) return;
    bool ok = write_all(fd.get(), buf, sizeof buf);
    fd.reset();
    if (!ok || ::renameat(dir, tmp.c_str(), dir, sidecar_name(name).c_str()) != 0)
        ::unlinkat(dir, tmp.c_str(), 0);
}

int DigestMeta::sidecar_dir(bool create) {
    if (side_) return side_.get();
    if (dirfd_ < 0) return -1;
    if (create && ::mkdirat(dirfd_, kSidecarDir, 0755) != 0 && errno != EEXIST) return -1;
    // O_NOFOLLOW: a symlink planted under this name must not lead records outside the store.
    side_.reset(::openat(dirfd_, kSidecarDir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    return side_.get();
}

void DigestMeta::tidy_sidecar_dir() {
    int dir = side_.get();
    store_detail::for_each_entry(dir, [&](const char* name) {
        if (!is_temp_name(name)) {
            struct stat st;
            std::string path = path_of_sidecar(name);
            Fd fd(valid_path(path) ? store_paths::open_beneath(dirfd_, path, O_PATH) : -1);
            if (fd && ::fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode)) return;
        }
        ::unlinkat(dir, name, 0);  // fails harmlessly on anything that is not a plain file
    });
}

}  // namespace duet
