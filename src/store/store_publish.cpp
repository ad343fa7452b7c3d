// Publishing an upload and deleting a file, with the calls that wait for the disk (fsync, link,
// rename, unlink) on a helper thread (README "Disk I/O off the loop").
//
// Compare-and-swap stays atomic with respect to duet's own writers: the precondition is checked on
// the loop right before the job is submitted, and from then until the job's books are done the
// name is "mutating": any other publish or delete of it by either port waits (its caller parks)
// and then checks again. Readers meanwhile see the old file: rename and unlink are atomic. The
// books (digest records, index, counts) are updated on the loop when the helper is done.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <utility>

#include "duet/store/store.hpp"
#include "duet/store/store_index.hpp"
#include "duet/store/store_paths.hpp"

namespace duet {

namespace {

// Attempts at a fresh temporary name before giving up (names only collide with leftovers).

// Gives an O_TMPFILE file a temporary name, so it can then be renamed over the target (linkat
// cannot replace an existing name itself). `seq` is a copy: a collision just tries the next.
int link_temp_name(int dir, int fd, unsigned seq, std::string& tmp_name) {
    char proc[64];
    std::snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    for (int attempt = 0; attempt < store_paths::kTempNameAttempts; ++attempt) {
        std::string tmp = store_detail::temp_name(seq);
        int rc = ::linkat(AT_FDCWD, proc, dir, tmp.c_str(), AT_SYMLINK_FOLLOW);
        // Without /proc, AT_EMPTY_PATH does the same but needs CAP_DAC_READ_SEARCH.
        if (rc != 0 && errno == ENOENT) rc = ::linkat(fd, "", dir, tmp.c_str(), AT_EMPTY_PATH);
        if (rc == 0) {
            tmp_name = std::move(tmp);
            return 0;
        }
        if (errno != EEXIST) return -errno;
    }
    return -EEXIST;
}

// The temporary name in the store's top folder `dir` becomes `leaf` in `to` (the target's folder).
int move_into_place(int dir, std::string& tmp_name, int to, const std::string& leaf,
                    bool no_replace) {
    if (!no_replace) {
        if (::renameat(dir, tmp_name.c_str(), to, leaf.c_str()) != 0) return -errno;
    } else if (::renameat2(dir, tmp_name.c_str(), to, leaf.c_str(), RENAME_NOREPLACE) != 0) {
        if (errno != EINVAL && errno != ENOSYS) return -errno;
        // File systems without RENAME_NOREPLACE: link() refuses an existing name just as
        // atomically; the temporary name is then dropped.
        if (::linkat(dir, tmp_name.c_str(), to, leaf.c_str(), 0) != 0) return -errno;
        ::unlinkat(dir, tmp_name.c_str(), 0);
    }
    tmp_name.clear();
    return 0;
}

Fd dup_fd(int fd) {
    return Fd(fd < 0 ? -1 : ::fcntl(fd, F_DUPFD_CLOEXEC, 0));
}

}  // namespace

void Store::run_offloaded(std::function<void()> work, std::function<void()> done) {
    if (offload_) return offload_(std::move(work), std::move(done));
    work();
    done();
}

int Upload::commit_async(std::string_view name, const Digest* expected, const Precondition& pre,
                         StoreOpRef& op, std::function<void(StoreOp&)> then) {
    if (!active() || !store_) return -EBADF;
    auto fail = [this](int rc) {
        abort();
        return rc;
    };
    if (!valid_path(name)) return fail(-EINVAL);
    // The pipe's last bytes first: parks until its helper is done (the store's wake).
    if (int rc = settle(); rc < 0) return rc == -EINPROGRESS ? rc : fail(rc);
    if (!fd_) return fail(-EBADF);
    Store& store = *store_;
    if (store.mutating(name)) return -EINPROGRESS;  // parks; woken when that change is done
    Sha256 sha = sha_;  // a copy: a call that must come again finds the state unchanged
    Digest digest = sha.finish();
    if (expected && *expected != digest) return fail(-EBADMSG);
    // Compare-and-swap: checked here, and no other change of this name by duet can start
    // before this one's books are done (mutating_).
    if (int rc = store.check_precondition(name, pre); rc < 0)
        return rc == -EINPROGRESS ? rc : fail(rc);
    struct stat st;
    if (::fstat(fd_.get(), &st) != 0) return fail(-errno);
    int recorded = store.meta_.record_new(fd_.get(), st, digest);
    if (recorded < 0) return fail(recorded);
    // Never publish into a directory that is no longer the store (renamed or removed meanwhile).
    if (!store.usable()) return fail(kStoreGone);

    struct Job {
        Fd dir, fd, side;
        std::string tmp, target, conflict;
        unsigned seq = 0;
        bool sync_data = false, sync_dir = false, no_replace = false, drop_sidecar = false;
        int rc = 0, synced = 0;
        bool replacing = false;
        struct stat old {};
    };
    auto job = std::make_shared<Job>();
    job->dir = dup_fd(store.dirfd());
    if (!job->dir) return fail(-errno);
    job->fd = std::move(fd_);
    job->tmp = std::move(tmp_name_);
    job->target = std::string(name);
    job->seq = store.tmp_seq_;
    store.tmp_seq_ += 16;  // jobs in flight at once start from different names
    job->sync_data = !data_synced_;
    job->sync_dir = !defer_dir_sync_;
    job->no_replace = pre.kind == Precondition::Kind::MustNotExist;
    job->drop_sidecar = recorded == 0;
    if (job->drop_sidecar) job->side = dup_fd(store.meta_.side_fd());
    reset_state();  // the job owns the file now; a failure there removes its temporary name
    store.mutating_.insert(job->target);
    op = std::make_shared<StoreOp>();

    auto work = [job] {
        Job& j = *job;
        int dir = j.dir.get();
        // Data and digest record reach the disk before any name does: after a crash the name
        // shows the old file or the whole new one, never a prefix.
        if (j.sync_data && ::fsync(j.fd.get()) != 0) j.rc = -errno;
        if (j.rc == 0 && j.tmp.empty()) j.rc = link_temp_name(dir, j.fd.get(), j.seq, j.tmp);
        // Uploads create their folders (README "Folders"), each durable before the answer.
        store_paths::Parent parent;
        std::string_view folder = parent_of(j.target);
        if (j.rc == 0 && !folder.empty()) {
            j.rc = store_paths::make_folders(dir, folder, j.conflict);
            if (j.rc == 0) j.rc = store_paths::open_parent(dir, j.target, parent);
        } else if (j.rc == 0) {
            store_paths::open_parent(dir, j.target, parent);
        }
        if (j.rc == 0) {
            int to = parent.fd;
            j.replacing = ::fstatat(to, parent.leaf.c_str(), &j.old, AT_SYMLINK_NOFOLLOW) == 0 &&
                          S_ISREG(j.old.st_mode);
            j.rc = move_into_place(dir, j.tmp, to, parent.leaf, j.no_replace);
            if (j.rc == -EEXIST && j.no_replace) j.rc = -ECANCELED;
            // A folder under that name: renaming a file over it fails.
            if (j.rc == -EISDIR) j.conflict = j.target;
        }
        if (j.rc < 0) {
            if (!j.tmp.empty()) ::unlinkat(dir, j.tmp.c_str(), 0);
            return;
        }
        // The rename is durable only once the directory is; it has happened either way, so a
        // failure here is reported after the books are updated.
        // A folder below the top one is synced here always (the caller's deferred sync is of the
        // top folder).
        if ((j.sync_dir || parent.fd != dir) && ::fsync(parent.fd) != 0) j.synced = -errno;
        // A sidecar record left from an earlier fallback would be ignored anyway (the inode
        // differs); dropping it keeps that directory small.
        if (j.drop_sidecar && j.side)
            ::unlinkat(j.side.get(), DigestMeta::sidecar_name(j.target).c_str(), 0);
    };
    auto done = [&store, job, op, st, digest, then = std::move(then)] {
        Job& j = *job;
        store.mutating_.erase(j.target);
        op->done = true;
        op->rc = j.rc;
        op->conflict = j.conflict;
        if (j.rc == 0) {
            store.changed(j.target);
            if (!j.drop_sidecar) store.meta_.published(j.target, st, digest, false);
            if (store.index_) store.index_->published(j.target, st, digest);
            if (j.replacing) {
                store.bytes_ -= std::min<std::uint64_t>(store.bytes_,
                                                        static_cast<std::uint64_t>(j.old.st_size));
            } else {
                ++store.files_;
            }
            store.bytes_ += static_cast<std::uint64_t>(st.st_size);
            op->info.name = j.target;
            op->info.size = static_cast<std::uint64_t>(st.st_size);
            op->info.sha256 = digest;
            op->info.mtime = st.st_mtim.tv_sec;
            op->created = !j.replacing;
            op->rc = j.synced;
        }
        if (then) then(*op);
    };
    store.run_offloaded(std::move(work), std::move(done));
    return 0;
}

int Upload::commit(std::string_view name, const Digest* expected, const Precondition& pre,
                   FileInfo& out, bool& created) {
    created = false;
    if (int rc = settle_now(); rc < 0) {
        abort();
        return rc;
    }
    StoreOpRef op;
    if (int rc = commit_async(name, expected, pre, op); rc < 0) return rc;
    if (!op->done) return -EINPROGRESS;  // a store with an offload: use commit_async
    out = op->info;
    created = op->created;
    return op->rc;
}

int Store::remove_async(std::string_view name, const Precondition& pre, StoreOpRef& op) {
    if (!valid_path(name)) return -EINVAL;
    if (!usable()) return kStoreGone;
    if (mutating(name)) return -EINPROGRESS;
    // A file duet may not read is not served, so it is not deleted either (403 on both ports).
    // The lookup is the one GET does (from the caches on the loop, -EINPROGRESS if cold).
    struct stat st;
    {
        Fd fd;
        if (int rc = open_regular(name, fd, st); rc < 0) return rc;
    }
    // Compare-and-swap, as in Upload::commit_async: checked right before the job, and no other
    // change of this name by duet starts before it is done.
    if (int rc = check_precondition(name, pre); rc < 0) return rc;

    struct Job {
        Fd dir, side;
        std::string name;
        bool sync_dir = false;
        int rc = 0;
    };
    auto job = std::make_shared<Job>();
    job->dir = dup_fd(dir_.get());
    if (!job->dir) return -errno;
    job->side = dup_fd(meta_.side_fd());
    job->name = std::string(name);
    job->sync_dir = !index_;  // with an index (the server) the fsync is a helper job of its own
    mutating_.insert(job->name);
    op = std::make_shared<StoreOp>();
    op->kind = StoreOp::Kind::Delete;
    auto work = [job] {
        // Should a symlink be swapped in meanwhile, unlinkat removes the link, never its target.
        store_paths::Parent parent;
        if (int rc = store_paths::open_parent(job->dir.get(), job->name, parent); rc < 0) {
            job->rc = rc;
            return;
        }
        if (::unlinkat(parent.fd, parent.leaf.c_str(), 0) != 0) {
            job->rc = -errno;
            return;
        }
        if (job->side)  // its digest record
            ::unlinkat(job->side.get(), DigestMeta::sidecar_name(job->name).c_str(), 0);
        // Make the delete stick; it has happened either way.
        if (job->sync_dir || parent.fd != job->dir.get()) ::fsync(parent.fd);
    };
    auto done = [this, job, op, size = st.st_size] {
        mutating_.erase(job->name);
        op->done = true;
        op->rc = job->rc;
        if (job->rc < 0) return;
        changed(job->name);
        if (index_) index_->removed(job->name);
        if (files_ > 0) --files_;
        bytes_ -= std::min<std::uint64_t>(bytes_, static_cast<std::uint64_t>(size));
        if (index_) index_->sync_dir_later();
    };
    run_offloaded(std::move(work), std::move(done));
    return 0;
}

int Store::make_folder_async(std::string_view path, StoreOpRef& op) {
    if (!valid_path(path)) return -EINVAL;
    if (!usable()) return kStoreGone;
    if (mutating(path)) return -EINPROGRESS;
    struct Job {
        Fd dir;
        std::string path;
        int rc = 0;
        struct stat st {};
    };
    auto job = std::make_shared<Job>();
    job->dir = dup_fd(dir_.get());
    if (!job->dir) return -errno;
    job->path = std::string(path);
    mutating_.insert(job->path);
    op = std::make_shared<StoreOp>();
    op->kind = StoreOp::Kind::MakeFolder;
    auto work = [job] {
        store_paths::Parent parent;
        if (int rc = store_paths::open_parent(job->dir.get(), job->path, parent); rc < 0) {
            job->rc = rc == -ELOOP ? -ENOTDIR : rc;
            return;
        }
        if (::mkdirat(parent.fd, parent.leaf.c_str(), 0755) != 0) {
            job->rc = -errno;
            return;
        }
        // Durable before the answer: the new folder and the one holding it.
        Fd made(::openat(parent.fd, parent.leaf.c_str(),
                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!made || ::fstat(made.get(), &job->st) != 0 || ::fsync(made.get()) != 0 ||
            ::fsync(parent.fd) != 0)
            job->rc = -errno;
    };
    auto done = [this, job, op] {
        mutating_.erase(job->path);
        op->done = true;
        op->rc = job->rc;
        if (job->rc == 0 && index_) index_->folder_made(job->path, job->st);
        op->info.name = job->path;
    };
    run_offloaded(std::move(work), std::move(done));
    return 0;
}

int Store::remove(std::string_view name, const Precondition& pre) {
    StoreOpRef op;
    if (int rc = remove_async(name, pre, op); rc < 0) return rc;
    return op->done ? op->rc : -EINPROGRESS;  // a store with an offload: use remove_async
}

}  // namespace duet
