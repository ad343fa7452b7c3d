#pragma once
// Paths below the store directory (README "Folders"): resolved from the store's fd, never above
// it and through no symlink, whatever someone plants inside. Client paths are checked
// (valid_path) before they get here; these calls block, so on the loop only cached lookups use
// them (store_lookup.cpp) and everything else runs on helpers.
#include <fcntl.h>
#include <sys/types.h>

#include <string>
#include <string_view>

#include "duet/core/fd.hpp"

namespace duet::store_paths {

// How a stored file is opened for reading its bytes: never through a symlink, never a FIFO's or a
// device's blocking open, never a controlling terminal.
inline constexpr int kReadFlags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
// Random temporary names tried before a create gives up (a clash means someone else's file).
inline constexpr int kTempNameAttempts = 100;

// open(2) of `path` beneath `root`: openat2 with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, or, where
// openat2 is missing, a walk that opens each folder with O_NOFOLLOW. -errno; a symlink on the way
// is -ELOOP, a file where a folder should be -ENOTDIR.
int open_beneath(int root, std::string_view path, int flags, mode_t mode = 0);
// The same from the kernel's caches only (RESOLVE_CACHED): -EAGAIN where the lookup would wait for
// the disk, -ENOSYS (or -EINVAL) where the kernel cannot say; then the caller decides.
int open_beneath_cached(int root, std::string_view path, int flags);

// The folder that holds `path`, open for *at calls and fsync: `fd` is `root` itself for a path of
// one segment, else `owned`. `leaf` is the last segment.
struct Parent {
    Fd owned;
    int fd = -1;
    std::string leaf;
};
int open_parent(int root, std::string_view path, Parent& out);

// Creates the folder `folder` ("a/b") and every missing one above it, each made durable (the new
// folder and the one holding it fsynced) before the call returns. 0 when it exists (created or
// not), -ENOTDIR with `blocker` set to the path of the file in the way, or -errno.
// `created` (optional) says whether the last folder was new.
int make_folders(int root, std::string_view folder, std::string& blocker, bool* created = nullptr);

}  // namespace duet::store_paths
