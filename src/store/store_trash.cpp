// Folder deletes (README "Folders"): a folder leaves the store by one atomic rename into the
// trash, ".duet-trash" in the store's top folder, which no client name can reach; its contents
// are then removed in the background, a bounded number of entries per helper job, so neither the
// loop nor a helper is held by a folder of any size. A crash between the two leaves the folder in
// the trash, emptied at the next start.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <string>

#include "duet/store/store.hpp"
#include "duet/store/store_index.hpp"
#include "duet/store/store_paths.hpp"

namespace duet {
namespace {

constexpr int kDirFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
// Entries removed per background job: a few milliseconds of unlinks.
constexpr int kRemovalsPerJob = 2048;

int open_trash(int root, bool create) {
    if (create && ::mkdirat(root, Store::kTrashDir, 0700) != 0 && errno != EEXIST) return -errno;
    int fd = ::openat(root, Store::kTrashDir, kDirFlags);
    return fd >= 0 ? fd : -errno;
}

// Removes entries below the folder open as `at`, depth first, until `budget` runs out. true when
// the folder is empty now.
bool remove_some(int at, int& budget) {
    int dup = ::fcntl(at, F_DUPFD_CLOEXEC, 0);
    if (dup < 0) return false;
    DIR* d = ::fdopendir(dup);
    if (!d) {
        ::close(dup);
        return false;
    }
    bool empty = true;
    while (budget > 0) {
        errno = 0;
        dirent* ent = ::readdir(d);
        if (!ent) break;
        const char* n = ent->d_name;
        if (std::strcmp(n, ".") == 0 || std::strcmp(n, "..") == 0) continue;
        if (::unlinkat(at, n, 0) == 0 || errno == ENOENT) {
            --budget;
            continue;
        }
        if (errno != EISDIR && errno != EPERM) {
            empty = false;
            continue;
        }
        Fd sub(::openat(at, n, kDirFlags));
        if (!sub) {
            empty = false;
            continue;
        }
        if (remove_some(sub.get(), budget) && ::unlinkat(at, n, AT_REMOVEDIR) == 0)
            --budget;
        else
            empty = false;
    }
    if (budget <= 0) empty = false;
    ::closedir(d);
    return empty;
}

}  // namespace

int Store::remove_folder_async(std::string_view path, StoreOpRef& op) {
    if (!valid_path(path)) return -EINVAL;
    if (!usable()) return kStoreGone;
    if (mutating(path)) return -EINPROGRESS;
    struct Job {
        Fd dir;
        std::string path, trash_name;
        int rc = 0;
    };
    auto job = std::make_shared<Job>();
    job->dir.reset(::fcntl(dir_.get(), F_DUPFD_CLOEXEC, 0));
    if (!job->dir) return -errno;
    job->path = std::string(path);
    job->trash_name = std::to_string(::getpid()) + "-" + std::to_string(time(nullptr)) + "-" +
                      std::to_string(trash_seq_++);
    mutating_.insert(job->path);
    op = std::make_shared<StoreOp>();
    op->kind = StoreOp::Kind::DeleteFolder;
    auto work = [job] {
        store_paths::Parent parent;
        if (int rc = store_paths::open_parent(job->dir.get(), job->path, parent); rc < 0) {
            job->rc = rc == -ELOOP || rc == -ENOTDIR ? -ENOENT : rc;
            return;
        }
        struct stat st;
        if (::fstatat(parent.fd, parent.leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
            job->rc = -errno;
            return;
        }
        if (!S_ISDIR(st.st_mode)) {
            job->rc = -ENOTDIR;
            return;
        }
        int t = open_trash(job->dir.get(), true);
        if (t < 0) {
            job->rc = t;
            return;
        }
        Fd trash(t);
        if (::renameat2(parent.fd, parent.leaf.c_str(), t, job->trash_name.c_str(),
                        RENAME_NOREPLACE) != 0 &&
            (errno != EINVAL ||
             ::renameat(parent.fd, parent.leaf.c_str(), t, job->trash_name.c_str()) != 0)) {
            job->rc = -errno;
            return;
        }
        // Gone for good once both folders are on disk.
        if (::fsync(parent.fd) != 0 || ::fsync(t) != 0) job->rc = -errno;
    };
    auto done = [this, job, op] {
        mutating_.erase(job->path);
        op->done = true;
        op->rc = job->rc;
        if (job->rc < 0 && job->rc != -EIO) return;
        changed(job->path);
        if (index_) index_->folder_removed(job->path);
        empty_trash();
    };
    run_offloaded(std::move(work), std::move(done));
    return 0;
}

void Store::empty_trash() {
    if (!dir_) return;
    if (emptying_trash_) {
        trash_again_ = true;  // the job running may have looked already: once more after it
        return;
    }
    trash_again_ = false;
    // Nothing to empty, nothing to start (a background helper starts only when there is work).
    struct stat st;
    if (::fstatat(dir_.get(), kTrashDir, &st, AT_SYMLINK_NOFOLLOW) != 0) return;
    Helpers* helpers = pipe_runner_.helpers;
    auto root = std::make_shared<Fd>(::fcntl(dir_.get(), F_DUPFD_CLOEXEC, 0));
    if (!*root) return;
    auto more = std::make_shared<bool>(false);
    auto step = [root, more] {
        int t = open_trash(root->get(), false);
        if (t < 0) return;  // no trash: nothing to do
        Fd trash(t);
        int budget = kRemovalsPerJob;
        *more = !remove_some(t, budget);
        // An empty trash stays: the next delete needs it anyway.
    };
    if (!helpers) {  // unit tests: all of it at once
        do step();
        while (*more);
        return;
    }
    emptying_trash_ = true;
    auto job = std::make_unique<Helpers::Job>();
    job->background = true;
    job->work = step;
    job->done = [this, more] {
        emptying_trash_ = false;
        if (*more || trash_again_) empty_trash();
    };
    helpers->submit(std::move(job));
}

}  // namespace duet
