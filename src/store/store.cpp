// The file store: one directory, reached only through its fd with openat-family calls and
// O_NOFOLLOW, so no name and no planted symlink leads outside it. Uploads are written to an
// unnamed temporary file (upload.cpp) and published whole by rename (store_publish.cpp).
// Digest records: store_meta.cpp.
#include "duet/store/store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "duet/store/store_index.hpp"
#include "duet/store/store_paths.hpp"

namespace duet {

namespace {

using store_detail::is_temp_name;
using store_detail::temp_name;

// Attempts at a fresh temporary name before giving up (names only collide with leftovers).

// strerror text starting in lower case, as the rest of duet's messages do.
std::string reason(int err) {
    std::string s = std::strerror(err);
    if (!s.empty() && s[0] >= 'A' && s[0] <= 'Z') s[0] = static_cast<char>(s[0] - 'A' + 'a');
    return s;
}

bool fail(std::string& err, const char* what, const std::string& dir, int e) {
    err = std::string(what) + " " + dir + ": " + reason(e);
    return false;
}

// mkdir said ENOENT: the parent is missing. Names it, and the first folder of the path that is
// missing, so the message says what to create.
bool fail_missing_parent(std::string& err, const std::string& dir) {
    std::string path = dir;
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    std::string parent = path.substr(0, path.find_last_of('/') + 1);
    while (parent.size() > 1 && parent.back() == '/') parent.pop_back();
    if (parent.empty()) parent = ".";
    std::string first = parent;  // the highest missing ancestor
    for (std::string up = parent;;) {
        struct stat st;
        if (::stat(up.c_str(), &st) == 0) break;
        first = up;
        std::size_t slash = up.find_last_of('/');
        if (slash == std::string::npos || slash == 0) break;
        up.resize(slash);
    }
    err = "cannot create store directory " + dir + ": its parent " + parent + " does not exist";
    if (first != parent) err += " (nor does " + first + ")";
    err += "; create it first (mkdir -p " + parent + ") or choose another --data";
    return false;
}

bool is_regular_at(int dirfd, const char* name, struct stat& st) {
    return ::fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

// Creates and removes a file under a temporary dot-name (swept at the next start if we die in
// between): asking faccessat is not enough, since root passes it on a read-only mount or in /proc.
bool probe_writable(int dirfd, const std::string& dir, std::string& err) {
    std::string probe = std::string(store_detail::kTmpPrefix) + "check-" + std::to_string(getpid());
    Fd fd(
        ::openat(dirfd, probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) return fail(err, "cannot write in store directory", dir, errno);
    // ENOENT: a starting duet swept it as a crash's leftover (a check while a reload begins).
    if (::unlinkat(dirfd, probe.c_str(), 0) != 0 && errno != ENOENT)
        return fail(err, "cannot remove files in store directory", dir, errno);
    return true;
}

}  // namespace

bool Store::open(const std::string& dir, std::string& err) {
    path_ = dir;
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
        return errno == ENOENT ? fail_missing_parent(err, dir)
                               : fail(err, "cannot create store directory", dir, errno);
    return reopen(err);
}

bool Store::reopen(std::string& err) {
    const std::string& dir = path_;
    files_ = bytes_ = 0;
    Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return fail(err, "cannot open store directory", dir, errno);
    if (::faccessat(fd.get(), ".", R_OK | W_OK | X_OK, AT_EACCESS) != 0)
        return fail(err, "cannot use store directory", dir, errno);
    if (!probe_writable(fd.get(), dir, err)) return false;
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return fail(err, "cannot open store directory", dir, errno);
    dev_ = st.st_dev;
    ino_ = st.st_ino;
    dir_ = std::move(fd);
    gone_reason_.clear();
    // Lookups asked of helpers in the old directory answer for it, not for this one.
    for (auto& [name, current] : cold_pending_) current = false;
    looked_.clear();
    if (!index_) sweep_and_count();
    meta_.attach(dir_.get());
    return true;
}

bool Store::usable() {
    if (gone()) return false;
    if (!dir_) return false;
    struct stat st;
    if (::fstat(dir_.get(), &st) != 0 || st.st_nlink == 0) {
        mark_gone("the store directory " + path_ + " was removed");
        return false;
    }
    if (::stat(path_.c_str(), &st) != 0 || st.st_dev != dev_ || st.st_ino != ino_) {
        mark_gone("the store directory " + path_ + " was moved or replaced");
        return false;
    }
    return true;
}

void Store::mark_gone(std::string reason) {
    if (gone()) return;
    gone_reason_ = std::move(reason);
}

// What open() does, with a probe file, and undone: a directory made for the check is removed again.
bool Store::check(const std::string& dir, std::string& err) {
    bool created = ::mkdir(dir.c_str(), 0755) == 0;
    if (!created && errno == ENOENT) return fail_missing_parent(err, dir);
    if (!created && errno != EEXIST) return fail(err, "cannot create store directory", dir, errno);
    bool ok = false;
    if (Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); !fd)
        fail(err, "cannot open store directory", dir, errno);
    else
        ok = probe_writable(fd.get(), dir, err);
    if (created) ::rmdir(dir.c_str());
    return ok;
}

// Removes temporary files left by a crash (named fallback temps, sidecar temps are tidied by the
// DigestMeta) and counts the regular files with valid names.
void Store::sweep_and_count() {
    files_ = bytes_ = 0;
    int dir = dir_.get();
    store_detail::for_each_entry(dir, [&](const char* name) {
        if (is_temp_name(name)) {
            if (!keep_temps_) ::unlinkat(dir, name, 0);
            return;
        }
        struct stat st;
        if (valid_name(name) && is_regular_at(dir, name, st)) {
            ++files_;
            bytes_ += static_cast<std::uint64_t>(st.st_size);
        }
    });
}

int Store::digest_of(std::string_view name, int fd, const struct stat& st, Digest& out) {
    if (!index_) return meta_.digest(name, fd, st, out);
    int rc = index_->digest_for(name, st, out);
    if (rc != -EINPROGRESS) return rc;
    // Not in the index yet (its build has not reached this name): the record may still do.
    rc = meta_.digest(name, fd, st, out, false);
    if (rc == 0) index_->published(name, st, out);
    if (rc == -EINPROGRESS) index_->need(name, st);
    return rc;
}

int Store::describe(std::string_view name, Fd& fd, FileInfo& out) {
    struct stat st;
    if (int rc = open_regular(name, fd, st); rc < 0) {
        if (rc == -EACCES) {  // `st` holds what fstatat saw: size and mtime, no digest
            out.name = std::string(name);
            out.size = static_cast<std::uint64_t>(st.st_size);
            out.mtime = st.st_mtim.tv_sec;
            out.sha256 = Digest{};
            out.readable = false;
        }
        return rc;
    }
    if (int rc = digest_of(name, fd.get(), st, out.sha256); rc < 0) {
        fd.reset();
        return rc;
    }
    out.name = std::string(name);
    out.size = static_cast<std::uint64_t>(st.st_size);
    out.mtime = st.st_mtim.tv_sec;
    return 0;
}

int Store::stat(std::string_view name, FileInfo& out) {
    Fd fd;
    return describe(name, fd, out);
}

int Store::open_read(std::string_view name, Fd& fd, FileInfo& out) {
    Fd opened;
    if (int rc = describe(name, opened, out); rc < 0) return rc;
    fd = std::move(opened);
    return 0;
}

int Store::check_precondition(std::string_view name, const Precondition& pre) {
    using K = Precondition::Kind;
    if (pre.kind == K::None) return 0;
    FileInfo cur;
    int rc = stat(name, cur);
    if (rc < 0 && rc != -ENOENT) return rc;
    bool exists = rc == 0;
    switch (pre.kind) {
        case K::MustExist:
            return exists ? 0 : -ECANCELED;
        case K::MustNotExist:
            return exists ? -ECANCELED : 0;
        case K::MustMatch:
            return exists && cur.sha256 == pre.etag ? 0 : -ECANCELED;
        case K::None:
            break;
    }
    return 0;
}

int Store::space(std::uint64_t& total, std::uint64_t& avail) const {
    struct statvfs sv;
    if (::fstatvfs(dir_.get(), &sv) != 0) return -errno;
    total = std::uint64_t(sv.f_blocks) * sv.f_frsize;
    avail = std::uint64_t(sv.f_bavail) * sv.f_frsize;
    return 0;
}

bool Store::exists(std::string_view name) {
    if (!valid_path(name) || !dir_) return false;
    int p = store_paths::open_beneath(dir_.get(), name, O_PATH | O_CLOEXEC);
    if (p < 0) return false;
    Fd probe(p);
    struct stat st;
    return ::fstat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int Store::list(std::vector<FileInfo>& out) {
    out.clear();
    if (!usable()) return kStoreGone;
    int fatal = 0;
    std::uint64_t files = 0, bytes = 0;
    int rc = store_detail::for_each_entry(dir_.get(), [&](const char* name) {
        if (fatal != 0 || !valid_name(name)) return;
        FileInfo info;
        Fd fd;
        int r = describe(name, fd, info);
        // Out of fds or memory would silently shorten the list; a file duet may not read is
        // listed with its size and no digest; anything else (vanished, not a regular file)
        // means the entry is not served, so not listed.
        if (r == -EMFILE || r == -ENFILE || r == -ENOMEM) fatal = r;
        if (r == -EACCES) r = 0;
        if (r != 0) return;
        ++files;
        bytes += info.size;
        out.push_back(std::move(info));
    });
    if (rc == 0) rc = fatal;
    if (rc < 0) {
        out.clear();
        return rc;
    }
    std::sort(out.begin(), out.end(),
              [](const FileInfo& a, const FileInfo& b) { return a.name < b.name; });
    // A full listing also picks up files dropped in or removed by hand since open().
    files_ = files;
    bytes_ = bytes;
    return 0;
}

// Also run by a helper (begin_upload_async): touches nothing but `dir` and its own arguments.
int Store::open_temp_at(int dir, bool force_named, unsigned seq, Fd& fd, std::string& tmp_name) {
    tmp_name.clear();
    if (!force_named) {
        int f = ::openat(dir, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
        if (f >= 0) {
            fd.reset(f);
            return 0;
        }
        // Old kernels and some file systems refuse O_TMPFILE in one of these ways.
        if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) return -errno;
    }
    for (int attempt = 0; attempt < store_paths::kTempNameAttempts; ++attempt) {
        std::string name = temp_name(seq);
        int f =
            ::openat(dir, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (f >= 0) {
            fd.reset(f);
            tmp_name = std::move(name);
            return 0;
        }
        if (errno != EEXIST) return -errno;
    }
    return -EEXIST;
}

int Store::begin_upload(Upload& up) {
    up.abort();
    if (!usable()) return kStoreGone;
    Fd fd;
    std::string tmp;
    if (int rc = open_temp_at(dir_.get(), force_named_tmp_, tmp_seq_, fd, tmp); rc < 0) return rc;
    tmp_seq_ += store_paths::kTempNameAttempts;
    up.store_ = this;
    up.fd_ = std::move(fd);
    up.tmp_name_ = std::move(tmp);
    return 0;
}

// Creating an inode can read the disk (bitmaps, the directory's blocks), and O_TMPFILE has no
// cached-only form: the file is made on a helper and adopted when the request runs again.
int Store::begin_upload_async(StoreOpRef& op) {
    if (!usable()) return kStoreGone;
    struct Job {
        Fd dir, fd;
        std::string tmp;
        bool named = false;
        unsigned seq = 0;
        int rc = 0;
    };
    auto job = std::make_shared<Job>();
    job->dir.reset(::fcntl(dir_.get(), F_DUPFD_CLOEXEC, 0));
    if (!job->dir) return -errno;
    job->named = force_named_tmp_;
    job->seq = tmp_seq_;
    tmp_seq_ +=
        store_paths::kTempNameAttempts;  // jobs in flight at once start from different names
    op = std::make_shared<StoreOp>();
    op->kind = StoreOp::Kind::TempFile;
    auto work = [job] {
        job->rc = open_temp_at(job->dir.get(), job->named, job->seq, job->fd, job->tmp);
    };
    auto done = [job, op] {
        op->rc = job->rc;
        op->fd = std::move(job->fd);
        op->tmp_name = std::move(job->tmp);
        op->done = true;
    };
    run_offloaded(std::move(work), std::move(done));
    return 0;
}

int Store::adopt_upload(StoreOp& op, Upload& up) {
    up.abort();
    if (op.rc < 0) return op.rc;
    if (!op.fd) return -EBADF;  // adopted already
    up.store_ = this;
    up.fd_ = std::move(op.fd);
    up.tmp_name_ = std::move(op.tmp_name);
    return 0;
}

}  // namespace duet
