// The store index's inotify side: changes made by others in the store directory, and the store
// directory itself going away (removed, renamed, unmounted) or coming back. See store_index.hpp.
#include <dirent.h>
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "duet/core/log_escape.hpp"
#include "duet/store/names.hpp"
#include "duet/store/store.hpp"
#include "duet/store/store_index.hpp"
#include "duet/store/store_paths.hpp"

namespace duet {
namespace {

constexpr std::uint32_t kStoreMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
                                     IN_ATTRIB | IN_CREATE | IN_DELETE_SELF | IN_MOVE_SELF |
                                     IN_ONLYDIR;
// A folder below the top one: the same events, but its own removal or move is seen in its parent.
constexpr std::uint32_t kFolderMask =
    IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ATTRIB | IN_CREATE | IN_ONLYDIR;
constexpr std::uint32_t kParentMask =
    IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM | IN_ONLYDIR;

void split_path(const std::string& path, std::string& parent, std::string& base) {
    std::string d = path;
    while (d.size() > 1 && d.back() == '/') d.pop_back();
    std::size_t slash = d.rfind('/');
    parent = slash == std::string::npos ? "." : slash == 0 ? "/" : d.substr(0, slash);
    base = slash == std::string::npos ? d : d.substr(slash + 1);
}

}  // namespace

void StoreIndex::add_watches() {
    if (!inotify_) return;
    const std::string& path = store().path();
    std::string parent;
    split_path(path, parent, base_);
    store_wd_ = ::inotify_add_watch(inotify_.get(), path.c_str(), kStoreMask);
    if (parent_wd_ < 0 && !base_.empty() && base_ != "." && base_ != "..")
        parent_wd_ = ::inotify_add_watch(inotify_.get(), parent.c_str(), kParentMask);
}

bool StoreIndex::watch_folder(const std::string& path, int fd) {
    if (!inotify_) return false;
    char proc[64];
    std::snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    int wd = path_wd_.size() >= max_watches_
                 ? (errno = ENOSPC, -1)
                 : ::inotify_add_watch(inotify_.get(), proc, kFolderMask);
    if (wd < 0) {
        if (!watch_limit_logged_) {
            watch_limit_logged_ = true;
            hooks_.log.log(
                "store index: cannot watch folder %s (%s): it and any other folder "
                "over the limit are read again every few seconds instead; raise "
                "fs.inotify.max_user_watches to see changes at once",
                log_escape(path).c_str(), std::strerror(errno));
        }
        unwatched_.insert(path);
        return false;
    }
    unwatched_.erase(path);
    // The same folder watched again (a rebuild) keeps its descriptor under its current path.
    if (auto old = wd_path_.find(wd); old != wd_path_.end()) path_wd_.erase(old->second);
    wd_path_[wd] = path;
    path_wd_[path] = wd;
    return true;
}

void StoreIndex::folder_appeared(const std::string& path) {
    struct stat st {};
    int rc = store().stat_cached(path, st);
    if (rc == -EAGAIN)
        st = {};  // not in the caches: its mtime comes with the next look
    else if (rc != 0 || !S_ISDIR(st.st_mode))
        return;  // gone again, or not a folder
    if (path.size() > kMaxPathBytes || !valid_path(path)) {
        skip(path, "a folder deeper or longer than a path may be");
        return;
    }
    Entry e;
    e.dir = true;
    e.state = State::Ready;
    e.mtime_ns = mtime_ns(st);
    set_entry(path, e);
    scan_folders({path}, false, false);
}

void StoreIndex::folder_gone(const std::string& path, bool moved) {
    std::string prefix = path + "/";
    // Everything below leaves the index. Listings in progress keep what they promised, entry by
    // entry; without any, the subtree goes in bulk: its totals come off its ancestors at once, and
    // the entries in one range erase (keys from "path/" up to "path0" are exactly those below).
    if (!streams_.empty()) {
        for (auto it = entries_.lower_bound(prefix);
             it != entries_.end() && it->first.compare(0, prefix.size(), prefix) == 0;) {
            std::string name = (it++)->first;
            erase(name);
        }
    } else {
        auto first = entries_.lower_bound(prefix), last = entries_.lower_bound(path + "0");
        for (auto it = first; it != last; ++it) {
            const Entry& e = it->second;
            bytes_ -= std::min(bytes_, e.size);
            if (e.state == State::Pending) --pending_;
            if (e.dir) --folders_held_;
        }
        entries_.erase(first, last);
        if (auto f = folders_.find(path); f != folders_.end()) {
            Totals below = f->second.below;
            for (std::string_view up = parent_of(path);; up = parent_of(up)) {
                if (auto a = folders_.find(up); a != folders_.end()) {
                    a->second.below.count -= below.count;
                    a->second.below.json -= below.json;
                    a->second.below.text -= below.text;
                }
                if (up.empty()) break;
            }
            folders_.erase(f);
        }
        folders_.erase(folders_.lower_bound(prefix), folders_.lower_bound(path + "0"));
        changed();
    }
    erase(path);
    // Its watches and those below: a folder moved away keeps them (dropped here), a removed
    // one's go by themselves (IN_IGNORED).
    auto drop = [this, moved](std::map<std::string, int, std::less<>>::iterator it) {
        if (moved && inotify_) ::inotify_rm_watch(inotify_.get(), it->second);
        wd_path_.erase(it->second);
        return path_wd_.erase(it);
    };
    if (auto it = path_wd_.find(path); it != path_wd_.end()) drop(it);
    for (auto it = path_wd_.lower_bound(prefix);
         it != path_wd_.end() && it->first.compare(0, prefix.size(), prefix) == 0;)
        it = drop(it);
    unwatched_.erase(path);
    for (auto it = unwatched_.lower_bound(prefix);
         it != unwatched_.end() && it->compare(0, prefix.size(), prefix) == 0;)
        it = unwatched_.erase(it);
}

// ---- folders over the watch limit ----

struct StoreIndex::Rescan {
    struct Item {
        std::string name;
        bool dir = false;
        std::uint64_t size = 0;
        std::int64_t mtime_ns = 0;
    };
    struct Folder {
        std::string path;
        bool gone = false;
        std::vector<Item> items;  // sorted by name
    };
    Fd dir;
    std::vector<Folder> folders;
};

namespace {
// Folders read per round: each costs a directory read on a helper and its reconcile on the loop.
constexpr std::size_t kRescanFolders = 16;
}  // namespace

void StoreIndex::rescan_unwatched() {
    if (unwatched_.empty() || rescanning_ || store().gone()) return;
    auto r = std::make_shared<Rescan>();
    r->dir.reset(::fcntl(store().dirfd(), F_DUPFD_CLOEXEC, 0));
    if (!r->dir) return;
    auto it = unwatched_.upper_bound(rescan_cursor_);
    for (std::size_t n = 0; n < kRescanFolders && n < unwatched_.size(); ++n, ++it) {
        if (it == unwatched_.end()) it = unwatched_.begin();
        r->folders.push_back({*it, false, {}});
    }
    rescan_cursor_ = r->folders.back().path;
    rescanning_ = true;
    auto job = std::make_unique<Helpers::Job>();
    job->work = [r] {
        for (Rescan::Folder& f : r->folders) {
            int fd =
                store_paths::open_beneath(r->dir.get(), f.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            DIR* d = fd >= 0 ? ::fdopendir(fd) : nullptr;
            if (!d) {
                if (fd >= 0) ::close(fd);
                f.gone = true;
                continue;
            }
            while (dirent* ent = ::readdir(d)) {
                std::string_view n = ent->d_name;
                struct stat st;
                if (!valid_name(n) ||
                    ::fstatat(::dirfd(d), ent->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
                    continue;
                if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) continue;
                f.items.push_back(
                    {std::string(n), S_ISDIR(st.st_mode), std::uint64_t(st.st_size), mtime_ns(st)});
            }
            ::closedir(d);
            std::sort(f.items.begin(), f.items.end(),
                      [](const Rescan::Item& a, const Rescan::Item& b) { return a.name < b.name; });
        }
    };
    job->done = [this, r] {
        rescanning_ = false;
        for (std::size_t i = 0; i < r->folders.size(); ++i) reconcile(r->folders[i].path, *r, i);
        pump_hashing();
        hooks_.wake();
    };
    hooks_.helpers.submit(std::move(job));
}

void StoreIndex::reconcile(const std::string& folder, const Rescan& r, std::size_t at) {
    const Rescan::Folder& f = r.folders[at];
    if (f.gone) return folder_gone(folder, false);
    if (!holds_folder(folder)) return;  // gone from the index meanwhile
    std::string prefix = folder + "/";
    // What the index holds there and the folder does not: gone.
    std::vector<std::pair<std::string, bool>> stale;
    for (auto it = next_in_scope(entries_.lower_bound(prefix), prefix, false); it != entries_.end();
         it = next_in_scope(std::next(it), prefix, false)) {
        std::string_view name = std::string_view(it->first).substr(prefix.size());
        auto found =
            std::lower_bound(f.items.begin(), f.items.end(), name,
                             [](const Rescan::Item& a, std::string_view n) { return a.name < n; });
        if (found == f.items.end() || found->name != name || found->dir != it->second.dir)
            stale.emplace_back(it->first, it->second.dir);
    }
    for (auto& [path, dir] : stale) {
        if (dir)
            folder_gone(path, false);
        else
            erase(path);
    }
    // What the folder holds and the index does not (or holds in another version): looked at.
    for (const Rescan::Item& item : f.items) {
        std::string path = prefix + item.name;
        if (store().mutating(path)) continue;
        auto it = entries_.find(path);
        if (item.dir) {
            if (it == entries_.end()) folder_appeared(path);
            continue;
        }
        if (it != entries_.end() && it->second.size == item.size &&
            it->second.mtime_ns == item.mtime_ns)
            continue;
        Entry e;
        e.size = item.size;
        e.mtime_ns = item.mtime_ns;
        e.state = State::Pending;
        set_entry(path, e);
    }
}

void StoreIndex::store_lost(const char* why) {
    if (store().gone()) return;
    store().mark_gone("the store directory " + store().path() + " was " + why);
    hooks_.log.log("store unavailable: %s; answering 503 until a directory appears there again",
                   store().gone_reason().c_str());
    hooks_.wake();
}

void StoreIndex::try_reopen() {
    std::string err;
    if (!store().reopen(err)) return;
    hooks_.log.log("store %s is back: serving it (index rebuilding)", store().path().c_str());
    if (inotify_ && store_wd_ >= 0) ::inotify_rm_watch(inotify_.get(), store_wd_);
    store_wd_ = -1;
    add_watches();
    json_.reset();
    text_.reset();
    rebuild(false);
    hooks_.wake();
}

void StoreIndex::on_event(std::uint32_t) {
    // One read per wake-up: a burst of events is taken in bounded bites between other work.
    alignas(inotify_event) char buf[16384];
    ssize_t n = ::read(inotify_.get(), buf, sizeof buf);
    if (n <= 0) return;
    bool overflow = false;
    for (char* p = buf; p < buf + n;) {
        auto* ev = reinterpret_cast<inotify_event*>(p);
        p += sizeof(inotify_event) + ev->len;
        std::string name = ev->len ? std::string(ev->name) : std::string();
        if (ev->mask & IN_Q_OVERFLOW) {
            overflow = true;
            continue;
        }
        if (ev->wd == parent_wd_ && ev->wd >= 0) {
            if (name != base_) continue;
            if (ev->mask & (IN_CREATE | IN_MOVED_TO)) {
                if (store().gone())
                    try_reopen();
                else
                    store().usable();  // replaced under us: noticed now
            } else if (ev->mask & IN_DELETE) {
                store_lost("removed");
            } else if (ev->mask & IN_MOVED_FROM) {
                store_lost("moved away");
            }
            continue;
        }
        if (ev->wd == store_wd_ && store_wd_ >= 0) {
            if (ev->mask & (IN_DELETE_SELF | IN_IGNORED)) {
                store_lost("removed");
                store_wd_ = -1;
                continue;
            }
            if (ev->mask & IN_MOVE_SELF) {
                store_lost("moved away");
                continue;
            }
            if (ev->mask & IN_UNMOUNT) {
                store_lost("unmounted");
                continue;
            }
        }
        // A folder below the top one: its events name entries in it.
        std::string folder;
        if (ev->wd != store_wd_ || store_wd_ < 0) {
            auto w = wd_path_.find(ev->wd);
            if (w == wd_path_.end()) continue;  // a watch already dropped
            if (ev->mask & IN_IGNORED) {
                path_wd_.erase(w->second);
                wd_path_.erase(w);
                continue;
            }
            if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT)) continue;
            folder = w->second;
        }
        if (store().gone() || name.empty()) continue;
        std::string path = folder.empty() ? name : folder + "/" + name;
        if (!valid_name(name)) {
            // Dot-names are duet's own; anything else that breaks the rules is reported once.
            if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE))
                if (std::string why = skip_reason(name, nullptr); !why.empty()) skip(path, why);
            continue;
        }
        // duet's own change of this path is in flight: its books follow when it is done, and an
        // event seen before then would only undo them (README "Folders").
        if (store().mutating(path)) continue;
        if (ev->mask & IN_ISDIR) {
            struct stat now;
            // A folder swapped with another (RENAME_EXCHANGE) is still there: not gone.
            if ((ev->mask & (IN_DELETE | IN_MOVED_FROM)) &&
                !(store().stat_cached(path, now) == 0 && S_ISDIR(now.st_mode)))
                folder_gone(path, ev->mask & IN_MOVED_FROM);
            else if (ev->mask & (IN_CREATE | IN_MOVED_TO))
                folder_appeared(path);
            continue;
        }
        if (ev->mask & (IN_DELETE | IN_MOVED_FROM)) {
            erase(path);
            continue;
        }
        if (ev->mask & IN_CREATE) {
            // A file being created (cp) is indexed when it is closed; only a new hard link,
            // which never gets a close event, is looked at now.
            // Just created, so its dentry is cached; should it not be, refresh() looks again
            // on a helper.
            struct stat st;
            int rc = store().stat_cached(path, st);
            if (rc != -EAGAIN && (rc != 0 || st.st_nlink < 2)) continue;
        }
        refresh(path);
    }
    if (overflow && !store().gone()) {
        hooks_.log.log("store index: inotify queue overflowed; rescanning %s",
                       store().path().c_str());
        rebuild(false);
    }
    hooks_.wake();
}

// A name the loop could not look up from the caches: a helper does (warming them), then the loop
// looks again; only if that still misses (a file system that caches no negative entries, or
// forced cold lookups in tests) is the helper's answer itself used.
void StoreIndex::refresh_later(const std::string& name) {
    struct Result {
        std::string name;
        Fd dir;
        struct stat st {};
        int rc = 0;
    };
    auto r = std::make_shared<Result>();
    r->name = name;
    r->dir.reset(::fcntl(store().dirfd(), F_DUPFD_CLOEXEC, 0));
    if (!r->dir) return;
    auto job = std::make_unique<Helpers::Job>();
    job->work = [r] {
        int p = store_paths::open_beneath(r->dir.get(), r->name, O_PATH | O_CLOEXEC);
        r->rc = p < 0 ? p : ::fstat(p, &r->st) == 0 ? 0 : -errno;
        if (p >= 0) ::close(p);
    };
    job->done = [this, r] {
        if (store().gone()) return;
        struct stat st;
        int rc = store().stat_cached(r->name, st);
        if (rc == -EAGAIN)
            refresh_with(r->name, r->rc, r->st);
        else
            refresh_with(r->name, rc, st);
        hooks_.wake();
    };
    hooks_.helpers.submit(std::move(job));
}

}  // namespace duet
