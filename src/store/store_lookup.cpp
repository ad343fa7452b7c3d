// Looking a name up in the store without waiting for the disk on the loop (README "Disk I/O off
// the loop"). On the loop a name is resolved only from the kernel's dentry and inode caches
// (openat2 with RESOLVE_CACHED, which fails with EAGAIN where the lookup would need I/O); such a
// miss goes to a helper thread, which does the blocking lookup (warming those caches) and hands
// its result back for the parked request to run again. The common, cached case stays one loop
// step with no thread hop.
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "duet/store/store.hpp"
#include "duet/store/store_index.hpp"
#include "duet/store/store_paths.hpp"

namespace duet {

namespace {

// O_NONBLOCK: a FIFO swapped in between the look and the open must not block anyone.
// Beneath the store's fd, no symlink anywhere (names have no '/', this is belt and braces), and
// only from the caches.
constexpr std::uint64_t kCachedResolve =
    RESOLVE_CACHED | RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;

int openat2_cached(int dirfd, const char* name, int flags) {
    open_how how{};
    how.flags = std::uint64_t(flags);
    how.resolve = kCachedResolve;
    return int(::syscall(SYS_openat2, dirfd, name, &how, sizeof how));
}

// Kernels before 5.6 (RESOLVE_CACHED: 5.12), seccomp profiles that refuse openat2, valgrind:
// then lookups block on the loop as they did before (the README says so).
bool no_cached_lookup(int e) {
    return e == ENOSYS || e == EPERM || e == EINVAL;
}

// The type check after opening: the entry may have been swapped between the look and the open.
int after_open(int f, Fd& fd, struct stat& st) {
    fd.reset(f);
    if (::fstat(f, &st) != 0) {
        int e = errno;
        fd.reset();
        return -e;
    }
    if (!S_ISREG(st.st_mode)) {
        fd.reset();
        return -ENOENT;
    }
    return 0;
}

// An open that failed: a symlink (ELOOP) or socket (ENXIO) swapped in is "not a file"; a file
// duet may not read keeps what the look saw, so its size can still be reported.
int open_failed(int e, const struct stat& looked, struct stat& st) {
    if (e == ELOOP || e == ENXIO) return -ENOENT;
    if (e == EACCES || e == EPERM) {
        st = looked;
        return -EACCES;
    }
    return -e;
}

}  // namespace

int Store::lookup_blocking(int dirfd, const char* name, Fd& fd, struct stat& st) {
    // Look before opening: opening a device node or FIFO can block or have side effects. An O_PATH
    // open looks without opening (and needs no read permission); the path is resolved beneath the
    // store through no symlink (store_paths.hpp).
    struct stat pre;
    {
        int p = store_paths::open_beneath(dirfd, name, O_PATH | O_CLOEXEC);
        if (p < 0) return p == -ELOOP || p == -ENOTDIR ? -ENOENT : p;
        Fd probe(p);
        if (::fstat(p, &pre) != 0) return -errno;
    }
    if (!S_ISREG(pre.st_mode)) return -ENOENT;
    int f = store_paths::open_beneath(dirfd, name, store_paths::kReadFlags);
    if (f < 0) return open_failed(-f, pre, st);
    return after_open(f, fd, st);
}

// The same steps from the caches only: the look is an O_PATH open (which opens no device and
// needs no read permission) and its fstat. -EAGAIN when either lookup would need the disk.
//
// A name the index holds was a regular file at the index's last look, and any change since
// reaches the index through inotify: such a name is opened at once (one lookup instead of two,
// the common GET), and the fstat after the open refuses what is not a regular file, as always.
// The look still comes first for names the index does not hold, and to learn the size of a file
// duet may not read.
int Store::lookup_cached(const char* name, Fd& fd, struct stat& st) {
    if (index_ && index_->holds(name)) {
        int f = openat2_cached(dir_.get(), name, store_paths::kReadFlags);
        if (f >= 0) return after_open(f, fd, st);
        if (errno == EAGAIN) return -EAGAIN;
        if (errno != EACCES && errno != EPERM && errno != ENOSYS && errno != EINVAL)
            return open_failed(errno, st, st);
    }
    struct stat pre;
    {
        Fd probe(openat2_cached(dir_.get(), name, O_PATH | O_NOFOLLOW | O_CLOEXEC));
        if (!probe && no_cached_lookup(errno)) {
            // An O_PATH open needs no permission: EPERM here is a filter refusing the call.
            cached_lookups_ = false;
            return lookup_blocking(dir_.get(), name, fd, st);
        }
        if (!probe) return errno == ELOOP || errno == ENOTDIR || errno == EXDEV ? -ENOENT : -errno;
        if (::fstat(probe.get(), &pre) != 0) return -errno;
    }
    if (!S_ISREG(pre.st_mode)) return -ENOENT;
    int f = openat2_cached(dir_.get(), name, store_paths::kReadFlags);
    if (f < 0) return errno == EAGAIN ? -EAGAIN : open_failed(errno, pre, st);
    return after_open(f, fd, st);
}

// fstatat of `path` beneath the store, through no symlink (blocking).
static int stat_beneath(int dirfd, const char* path, struct stat& st) {
    int p = store_paths::open_beneath(dirfd, path, O_PATH | O_CLOEXEC);
    if (p < 0) return p;
    Fd probe(p);
    return ::fstat(p, &st) == 0 ? 0 : -errno;
}

int Store::stat_cached(std::string_view name, struct stat& st) {
    if (!dir_ || name.size() > kMaxPathBytes) return -EINVAL;
    std::string path(name);
    const char* n = path.c_str();
    if (!cached_lookups_) return stat_beneath(dir_.get(), n, st);
    Fd probe(openat2_cached(dir_.get(), n, O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!probe && no_cached_lookup(errno)) {
        cached_lookups_ = false;
        return stat_beneath(dir_.get(), n, st);
    }
    if (!probe) return -errno;
    if (::fstat(probe.get(), &st) != 0) return -errno;
    return force_cold_ ? -EAGAIN : 0;
}

int Store::open_regular(std::string_view name, Fd& fd, struct stat& st) {
    if (!valid_path(name)) return -EINVAL;
    if (gone()) return kStoreGone;
    if (!dir_) return -EBADF;
    std::string path(name);
    const char* n = path.c_str();
    if (!cold_ || !cached_lookups_) return lookup_blocking(dir_.get(), n, fd, st);
    if (!looked_.empty()) {
        // The run a helper's lookup woke (or another request for the same name in this step).
        if (auto it = looked_.find(name); it != looked_.end()) {
            const Looked& l = it->second;
            st = l.st;
            if (l.rc != 0) return l.rc;
            int f = ::fcntl(l.fd.get(), F_DUPFD_CLOEXEC, 0);
            if (f < 0) return -errno;
            fd.reset(f);
            return 0;
        }
    }
    int rc = lookup_cached(n, fd, st);
    if (force_cold_) {
        fd.reset();
        rc = -EAGAIN;
    }
    if (rc != -EAGAIN) return rc;
    // Asked once per name however many requests wait for it; all of them park and are woken.
    if (auto [it, fresh] = cold_pending_.try_emplace(std::string(name), true); fresh)
        cold_(it->first);
    return -EINPROGRESS;
}

void Store::looked_up(const std::string& name, int rc, Fd fd, const struct stat& st) {
    auto it = cold_pending_.find(name);
    bool current = it != cold_pending_.end() && it->second;
    if (it != cold_pending_.end()) cold_pending_.erase(it);
    // Stale when duet changed the name meanwhile: the woken request then looks again (the
    // change itself left the caches warm).
    if (!current) return;
    Looked& l = looked_[name];
    l.rc = rc;
    l.fd = std::move(fd);
    l.st = st;
}

void Store::changed(std::string_view name) {
    if (!cold_) return;
    if (auto it = cold_pending_.find(name); it != cold_pending_.end()) it->second = false;
    if (auto it = looked_.find(name); it != looked_.end()) looked_.erase(it);
}

void Store::use_helpers(Helpers& helpers, std::function<void()> wake) {
    pipe_runner_ = {&helpers, wake};
    set_cold_lookup(
        [this, &helpers, wake](const std::string& name) { look_up_later(helpers, wake, name); });
    set_offload([&helpers, wake](std::function<void()> work, std::function<void()> done) {
        auto job = std::make_unique<Helpers::Job>();
        job->work = std::move(work);
        job->done = [wake, done = std::move(done)] {
            done();
            wake();
        };
        helpers.submit(std::move(job), true);  // a client waits for it
    });
}

// The helper's half: the blocking lookup on a duplicate of the store's fd (the store may be
// reopened meanwhile), its result handed to the store on the loop, then the parked requests
// woken to run again.
void Store::look_up_later(Helpers& helpers, const std::function<void()>& wake,
                          const std::string& name) {
    struct Result {
        std::string name;
        Fd dir;
        Fd fd;
        struct stat st {};
        int rc = 0;
    };
    auto r = std::make_shared<Result>();
    r->name = name;
    r->dir.reset(::fcntl(dirfd(), F_DUPFD_CLOEXEC, 0));
    if (!r->dir) r->rc = -errno;
    auto job = std::make_unique<Helpers::Job>();
    job->work = [r] {
        if (r->dir) r->rc = lookup_blocking(r->dir.get(), r->name.c_str(), r->fd, r->st);
    };
    job->done = [this, wake, r] {
        looked_up(r->name, r->rc, std::move(r->fd), r->st);
        wake();
    };
    helpers.submit(std::move(job), true);  // someone is waiting for it
}

}  // namespace duet
