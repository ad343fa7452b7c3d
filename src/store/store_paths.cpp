#include "duet/store/store_paths.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "duet/store/names.hpp"

namespace duet::store_paths {
namespace {

constexpr int kDirFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

bool openat2_missing = false;  // set once: ENOSYS, or a filter that refuses the call

int walk_open(int root, std::string_view path, int flags, mode_t mode) {
    Fd cur;
    int at = root;
    std::string seg;
    for (std::size_t from = 0;;) {
        std::size_t slash = path.find('/', from);
        seg.assign(path.substr(from, slash == std::string_view::npos ? path.npos : slash - from));
        if (slash == std::string_view::npos) {
            int f = ::openat(at, seg.c_str(), flags | O_NOFOLLOW, mode);
            return f >= 0 ? f : -errno;
        }
        int f = ::openat(at, seg.c_str(), kDirFlags);
        if (f < 0) return -errno;
        cur.reset(f);
        at = f;
        from = slash + 1;
    }
}

}  // namespace

int open_beneath(int root, std::string_view path, int flags, mode_t mode) {
    if (!openat2_missing) {
        open_how how{};
        how.flags = std::uint64_t(flags | O_NOFOLLOW);
        how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
        how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
        std::string p(path);
        int f = int(::syscall(SYS_openat2, root, p.c_str(), &how, sizeof how));
        if (f >= 0) return f;
        if (errno != ENOSYS && errno != EPERM) return -errno;
        if (errno == ENOSYS) openat2_missing = true;
    }
    return walk_open(root, path, flags, mode);
}

int open_beneath_cached(int root, std::string_view path, int flags) {
    if (openat2_missing) return -ENOSYS;
    open_how how{};
    how.flags = std::uint64_t(flags | O_NOFOLLOW);
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_CACHED;
    std::string p(path);
    int f = int(::syscall(SYS_openat2, root, p.c_str(), &how, sizeof how));
    return f >= 0 ? f : -errno;
}

int open_parent(int root, std::string_view path, Parent& out) {
    out.leaf.assign(leaf_of(path));
    std::string_view parent = parent_of(path);
    if (parent.empty()) {
        out.fd = root;
        return 0;
    }
    int f = open_beneath(root, parent, kDirFlags);
    if (f < 0) return f;
    out.owned.reset(f);
    out.fd = f;
    return 0;
}

int make_folders(int root, std::string_view folder, std::string& blocker, bool* created) {
    if (created) *created = false;
    Fd cur;
    int at = root;
    std::string seg;
    for (std::size_t from = 0;;) {
        std::size_t slash = folder.find('/', from);
        std::size_t end = slash == std::string_view::npos ? folder.size() : slash;
        seg.assign(folder.substr(from, end - from));
        bool made = false;
        if (::mkdirat(at, seg.c_str(), 0755) == 0) {
            made = true;
        } else if (errno != EEXIST) {
            return -errno;
        }
        int f = ::openat(at, seg.c_str(), kDirFlags);
        if (f < 0) {
            int e = errno;
            // A file (or a symlink, which duet never follows) where a folder should be.
            if (e == ENOTDIR || e == ELOOP) {
                blocker.assign(folder.substr(0, end));
                return -ENOTDIR;
            }
            return -e;
        }
        Fd next(f);
        // A new folder is durable once it and the folder holding it are on the disk.
        if (made && (::fsync(f) != 0 || ::fsync(at) != 0)) return -errno;
        if (created && slash == std::string_view::npos) *created = made;
        cur = std::move(next);
        at = cur.get();
        if (slash == std::string_view::npos) return 0;
        from = slash + 1;
    }
}

}  // namespace duet::store_paths
