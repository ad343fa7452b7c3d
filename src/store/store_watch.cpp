// The store index's inotify side: changes made by others in the store directory, and the store
// directory itself going away (removed, renamed, unmounted) or coming back. See store_index.hpp.
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>

#include "duet/store/names.hpp"
#include "duet/store/store.hpp"
#include "duet/store/store_index.hpp"

namespace duet {
namespace {

constexpr std::uint32_t kStoreMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
                                     IN_ATTRIB | IN_CREATE | IN_DELETE_SELF | IN_MOVE_SELF |
                                     IN_ONLYDIR;
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
        if (ev->wd != store_wd_ || store_wd_ < 0) continue;
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
        if (store().gone()) continue;
        if (!valid_name(name)) {
            // Dot-names are duet's own; anything else that breaks the rules is reported once.
            if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE))
                if (std::string why = skip_reason(name, nullptr); !why.empty()) skip(name, why);
            continue;
        }
        if (ev->mask & (IN_DELETE | IN_MOVED_FROM)) {
            erase(name);
            continue;
        }
        if (ev->mask & IN_CREATE) {
            // A file being created (cp) is indexed when it is closed; only a new hard link,
            // which never gets a close event, is looked at now.
            // Just created, so its dentry is cached; should it not be, refresh() looks again
            // on a helper.
            struct stat st;
            int rc = store().stat_cached(name, st);
            if (rc != -EAGAIN && (rc != 0 || st.st_nlink < 2)) continue;
        }
        refresh(name);
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
        r->rc =
            ::fstatat(r->dir.get(), r->name.c_str(), &r->st, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
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
