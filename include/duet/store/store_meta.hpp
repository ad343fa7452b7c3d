#pragma once
// Store internals: where a file's SHA-256 is remembered so that listings and ETags never re-read
// bodies. The record (digest + the size, mtime and inode it was computed for) lives in the user
// xattr "user.duet.sha256" on the file itself, so it moves and dies with the inode; on file systems
// without user xattrs it lives in a sidecar file ".duet-meta/NAME" instead. A record that no longer
// matches the file (dropped in or edited by hand) is ignored, and the digest is computed once from
// the bytes and recorded again. Only store.cpp uses this header.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "duet/core/fd.hpp"
#include "duet/core/sha256.hpp"

namespace duet {

namespace store_detail {

// Every temporary name duet creates, in the store and in the sidecar directory, starts with this;
// a client name cannot (it may not start with '.'), and Store::open removes leftovers.
inline constexpr std::string_view kTmpPrefix = ".duet-tmp-";

inline bool is_temp_name(std::string_view name) {
    return name.substr(0, kTmpPrefix.size()) == kTmpPrefix;
}

// ".duet-tmp-<pid>-<seq>", advancing seq.
std::string temp_name(unsigned& seq);

// Calls f(const char* name) for each entry of the directory open as `dirfd` except "." and "..".
// Reads through a fresh open of "." so the caller's fd offset is untouched. 0 or -errno.
template <class F>
int for_each_entry(int dirfd, F&& f) {
    int fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -errno;
    DIR* d = ::fdopendir(fd);
    if (!d) {
        int e = errno;
        ::close(fd);
        return -e;
    }
    int rc = 0;
    for (;;) {
        errno = 0;
        struct dirent* ent = ::readdir(d);
        if (!ent) {
            rc = -errno;
            break;
        }
        if (std::strcmp(ent->d_name, ".") == 0 || std::strcmp(ent->d_name, "..") == 0) continue;
        f(static_cast<const char*>(ent->d_name));
    }
    ::closedir(d);
    return rc;
}

}  // namespace store_detail

class DigestMeta {
  public:
    static constexpr const char* kXattr = "user.duet.sha256";
    static constexpr const char* kSidecarDir = ".duet-meta";
    static constexpr std::size_t kRecordSize = 4 + 32 + 4 * 8;  // magic, digest, 4 x u64

    // Binds to the store directory. Opens an existing sidecar directory and drops its leftovers:
    // temporary files and records whose file is gone.
    void attach(int store_dirfd);

    // Digest of the regular file open as `fd` (status `st`) under `name`: from its record when it
    // still matches, else read from the bytes and recorded. 0 or -errno (read errors only).
    // With `may_hash` false, a file without a matching record is -EINPROGRESS instead: the
    // store index hashes it on a helper thread (store_index.cpp).
    int digest(std::string_view name, int fd, const struct stat& st, Digest& out,
               bool may_hash = true);

    // For helper threads, which share no state with this object: the digest in the xattr
    // record of `fd` if it matches `st`, and writing such a record. Thread-safe.
    static bool xattr_record(int fd, const struct stat& st, Digest& out);
    static bool write_xattr_record(int fd, const struct stat& st, const Digest& d);
    // The sidecar record of `name` in the sidecar directory open as `side_dirfd`, if it matches.
    static bool sidecar_record(int side_dirfd, const char* name, const struct stat& st,
                               Digest& out);
    // After a helper hashed a file whose xattr could not take the record: keep it in a sidecar.
    void remember_by_name(std::string_view name, const struct stat& st, const Digest& d) {
        if (!xattr_ok_) write_sidecar(name, record_for(st, d));
    }

    // Upload commit, on the temp file before its fsync, so the record is durable with the data:
    // 0 recorded in the xattr; 1 xattrs unavailable, call published() once the name exists;
    // -errno (e.g. -ENOSPC) and the commit should fail.
    int record_new(int fd, const struct stat& st, const Digest& d);
    // After the upload is visible under `name`. `in_xattr` is record_new() == 0.
    void published(std::string_view name, const struct stat& st, const Digest& d, bool in_xattr);
    // The file under `name` was removed.
    void forget(std::string_view name);

    // The record's name in the sidecar directory for the file at `path`: its '/' written as '\\',
    // which no name may hold (a path over 255 bytes has no sidecar record: hashed again at start).
    static std::string sidecar_name(std::string_view path);
    static std::string path_of_sidecar(std::string_view sidecar);
    // The sidecar directory, if open (-1 if not): a helper drops a stale record through a dup.
    int side_fd() const { return side_.get(); }
    void disable_xattr() { xattr_ok_ = false; }
    bool xattr_ok() const { return xattr_ok_; }

  private:
    struct Record {
        Digest sha256{};
        std::uint64_t size = 0, ino = 0;
        std::int64_t mtime_sec = 0, mtime_nsec = 0;
    };
    static Record record_for(const struct stat& st, const Digest& d);
    static void encode(const Record& r, std::uint8_t* out);
    static bool decode(const std::uint8_t* buf, std::size_t len, Record& r);
    static bool matches(const Record& r, const struct stat& st, bool check_ino);

    bool read_xattr(int fd, Record& r);
    bool read_sidecar(std::string_view name, Record& r);
    void write_sidecar(std::string_view name, const Record& r);
    void remember(std::string_view name, int fd, const Record& r);
    int sidecar_dir(bool create);
    void tidy_sidecar_dir();

    int dirfd_ = -1;
    Fd side_;  // ".duet-meta", opened on first need
    bool xattr_ok_ = true;
    unsigned tmp_seq_ = 0;
};

}  // namespace duet
