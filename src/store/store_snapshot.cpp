// A folder's snapshot for its tar (README "Folders"): read from the disk on a helper, depth first,
// each folder's entries in name order, so that no loop step grows with the folder; the request
// waits for it. What it finds is what a directory read finds at that moment, and the tar checks
// each file again when its turn comes (tar_stream.cpp).
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <vector>

#include "duet/store/store.hpp"
#include "duet/store/store_index.hpp"
#include "duet/store/store_paths.hpp"

namespace duet {
namespace {

// Depth first, each folder's entries in name order: what `folder` holds, as tar entries named
// from it. Only what duet serves: valid names, folders and regular files it may read, no symlink.
int walk(int root, const std::string& folder, std::vector<TarEntry>& out) {
    struct Pending {
        std::string path;  // from the top folder
        std::string name;  // from `folder`, with its '/' ("" for `folder` itself)
    };
    std::vector<Pending> stack{{folder, ""}};
    while (!stack.empty()) {
        Pending p = std::move(stack.back());
        stack.pop_back();
        int fd = p.path.empty()
                     ? ::openat(root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                     : store_paths::open_beneath(root, p.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
            if (p.name.empty()) return fd == -1 ? -errno : fd;
            continue;  // gone meanwhile
        }
        DIR* d = ::fdopendir(fd);
        if (!d) {
            ::close(fd);
            continue;
        }
        if (!p.name.empty()) {
            // The folder's own entry first, then what it holds.
            TarEntry e;
            e.path = p.path;
            e.name = p.name;
            e.dir = true;
            struct stat st;
            if (::fstat(fd, &st) == 0) e.mtime_ns = mtime_ns(st);
            out.push_back(std::move(e));
        }
        std::vector<std::pair<std::string, struct stat>> items;
        while (dirent* ent = ::readdir(d)) {
            struct stat st;
            if (!valid_name(ent->d_name) ||
                ::fstatat(::dirfd(d), ent->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
                continue;
            if (S_ISREG(st.st_mode) && ::faccessat(::dirfd(d), ent->d_name, R_OK, AT_EACCESS) != 0)
                continue;  // not served, so not archived
            if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) items.emplace_back(ent->d_name, st);
        }
        ::closedir(d);
        std::sort(items.begin(), items.end(),
                  [](const auto& a, const auto& b) { return a.first > b.first; });  // popped last
        // Files now, in name order; folders go on the stack (visited in name order after them).
        for (auto it = items.rbegin(); it != items.rend(); ++it) {
            if (!S_ISREG(it->second.st_mode)) continue;
            TarEntry e;
            e.path = p.path.empty() ? it->first : p.path + "/" + it->first;
            e.name = p.name + it->first;
            e.size = std::uint64_t(it->second.st_size);
            e.mtime_ns = mtime_ns(it->second);
            if (e.path.size() <= kMaxPathBytes) out.push_back(std::move(e));
        }
        for (auto& [name, st] : items) {
            if (!S_ISDIR(st.st_mode)) continue;
            std::string path = p.path.empty() ? name : p.path + "/" + name;
            if (path.size() > kMaxPathBytes ||
                std::size_t(std::count(path.begin(), path.end(), '/')) >= kMaxSegments)
                continue;
            stack.push_back({path, p.name + name + "/"});
        }
    }
    return 0;
}

}  // namespace

int Store::snapshot_async(const std::string& folder, StoreOpRef& op) {
    if (!folder.empty() && !valid_path(folder)) return -EINVAL;
    if (!usable()) return kStoreGone;
    auto dir = std::make_shared<Fd>(::fcntl(dir_.get(), F_DUPFD_CLOEXEC, 0));
    if (!*dir) return -errno;
    op = std::make_shared<StoreOp>();
    op->kind = StoreOp::Kind::Snapshot;
    auto entries = std::make_shared<std::vector<TarEntry>>();
    auto rc = std::make_shared<int>(0);
    auto work = [dir, folder, entries, rc] { *rc = walk(dir->get(), folder, *entries); };
    auto done = [op, entries, rc] {
        op->done = true;
        op->rc = *rc;
        op->entries = std::move(*entries);
    };
    run_offloaded(std::move(work), std::move(done));
    return 0;
}

}  // namespace duet
