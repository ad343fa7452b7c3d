// MOVE of a file or a folder (README "Folders"): one rename on a helper, RENAME_NOREPLACE when
// the destination must not exist (so `Overwrite: F` and `if=none` cannot race a writer), and a
// folder at the destination swapped out atomically (RENAME_EXCHANGE) and then sent to the trash.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <string>

#include "duet/store/store.hpp"
#include "duet/store/store_index.hpp"
#include "duet/store/store_paths.hpp"

namespace duet {

int Store::move_async(std::string_view src, std::string_view dst, const Precondition& pre,
                      bool no_replace, StoreOpRef& op) {
    if (!valid_path(src) || !valid_path(dst)) return -EINVAL;
    if (!usable()) return kStoreGone;
    if (mutating(src) || mutating(dst)) return -EINPROGRESS;
    std::string inside = std::string(src) + "/";
    bool into_itself = dst == src || dst.substr(0, inside.size()) == inside;
    if (int rc = check_precondition(src, pre); rc < 0) return rc;
    struct Job {
        Fd dir;
        std::string src, dst, trash_name, conflict;
        bool no_replace = false, into_itself = false;
        bool folder = false, created = false;
        int rc = 0;
    };
    auto job = std::make_shared<Job>();
    job->dir.reset(::fcntl(dir_.get(), F_DUPFD_CLOEXEC, 0));
    if (!job->dir) return -errno;
    job->src = std::string(src);
    job->dst = std::string(dst);
    job->no_replace = no_replace;
    job->into_itself = into_itself;
    job->trash_name = std::to_string(::getpid()) + "-" + std::to_string(time(nullptr)) + "-m" +
                      std::to_string(trash_seq_++);
    mutating_.insert(job->src);
    mutating_.insert(job->dst);
    op = std::make_shared<StoreOp>();
    op->kind = StoreOp::Kind::Move;
    auto work = [job] {
        Job& j = *job;
        int root = j.dir.get();
        store_paths::Parent from, to;
        struct stat st, old;
        if (store_paths::open_parent(root, j.src, from) < 0 ||
            ::fstatat(from.fd, from.leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) {
            j.rc = -ENOENT;
            return;
        }
        j.folder = S_ISDIR(st.st_mode);
        if (j.folder && j.into_itself) {
            j.rc = -EINVAL;
            return;
        }
        if (j.src == j.dst) {  // a file onto itself: nothing to do
            j.rc = j.no_replace ? -ECANCELED : 0;
            return;
        }
        if (int rc = store_paths::open_parent(root, j.dst, to); rc < 0) {
            j.rc = rc == -ENOENT ? -ENOENT : -ENOTDIR;
            j.conflict = "parent";
            return;
        }
        const char* s = from.leaf.c_str();
        const char* d = to.leaf.c_str();
        bool exists = ::fstatat(to.fd, d, &old, AT_SYMLINK_NOFOLLOW) == 0;
        j.created = !exists;
        if (j.no_replace) {
            if (::renameat2(from.fd, s, to.fd, d, RENAME_NOREPLACE) != 0)
                j.rc = errno == EEXIST ? -ECANCELED : -errno;
        } else if (exists && S_ISDIR(old.st_mode)) {
            // The old folder leaves in the same step the new one arrives; then to the trash.
            if (::renameat2(from.fd, s, to.fd, d, RENAME_EXCHANGE) != 0) {
                j.rc = -errno;
                return;
            }
            ::mkdirat(root, kTrashDir, 0700);
            Fd trash(::openat(root, kTrashDir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (!trash || ::renameat(from.fd, s, trash.get(), j.trash_name.c_str()) != 0)
                j.rc = -EIO;
            if (trash) ::fsync(trash.get());
        } else if (exists && j.folder) {
            // A folder over a file: the file goes first (RFC 4918 §9.9.3, Overwrite: T).
            if (::unlinkat(to.fd, d, 0) != 0 || ::renameat(from.fd, s, to.fd, d) != 0)
                j.rc = -errno;
        } else if (::renameat(from.fd, s, to.fd, d) != 0) {
            j.rc = -errno;
        }
        if (j.rc != 0) return;
        if (::fsync(to.fd) != 0 || (from.fd != to.fd && ::fsync(from.fd) != 0)) j.rc = -EIO;
    };
    auto done = [this, job, op] {
        mutating_.erase(job->src);
        mutating_.erase(job->dst);
        op->done = true;
        op->rc = job->rc;
        op->created = job->created;
        op->conflict = job->conflict;
        if (job->rc < 0 && job->rc != -EIO) return;
        changed(job->src);
        changed(job->dst);
        if (index_) index_->moved(job->src, job->dst, job->folder);
        empty_trash();
    };
    run_offloaded(std::move(work), std::move(done));
    return 0;
}

}  // namespace duet
