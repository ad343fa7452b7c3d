// The in-memory store index: its builds, its entries and duet's own changes. Digests are
// computed in store_hashing.cpp, inotify is read in store_watch.cpp, listings in store_listing.cpp.
#include "duet/store/store_index.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <vector>

#include "duet/core/clock.hpp"
#include "duet/core/log_escape.hpp"
#include "duet/store/store.hpp"
#include "duet/store/store_meta.hpp"
#include "duet/store/store_paths.hpp"

namespace duet {
namespace {

constexpr std::size_t kScanBatch = 512;  // directory entries per helper job

}  // namespace

// Why an entry of the store is not served, or "" when it is (README "File names"). duet's own
// bookkeeping (".duet-...") and the directory's "." and ".." are neither served nor reported.
std::string StoreIndex::skip_reason(std::string_view name, const struct stat* st) {
    if (name == "." || name == ".." || name.starts_with(".duet-")) return {};
    if (std::string why = name_error(name); !why.empty()) return why;
    if (!st) return {};
    if (S_ISLNK(st->st_mode)) return "a symbolic link (duet follows none)";
    if (S_ISDIR(st->st_mode)) return {};  // a folder is served
    if (!S_ISREG(st->st_mode)) return "not a regular file";
    return {};
}

namespace {

constexpr const char* kTooDeep = "a folder deeper or longer than a path may be";
constexpr const char* kTooLong = "a path over 1024 bytes";

bool indexable(std::string_view name) {
    return valid_name(name);  // dot-names (temporaries, sidecar records) are duet's own
}

}  // namespace

// One build, or the reading of a folder that appeared: folders read by helpers a batch of
// entries at a time, in order. Each folder is opened first and handed to the loop, which watches
// it before its entries are read, so nothing created in it meanwhile is missed.
struct StoreIndex::ScanState {
    struct Item {
        std::string name;  // the path from the top folder
        Entry entry;
        bool has_digest;
    };
    struct Skipped {
        std::string name, why;
    };
    std::vector<Skipped> skipped;  // this batch's entries not served
    Fd dir, side;
    std::deque<std::string> folders;  // still to read
    std::string current;              // the folder being read ("" the top one)
    std::string prefix;               // current + "/", or ""
    DIR* stream = nullptr;
    int opened = -1;  // the folder just opened (stream's fd): the loop watches it first
    unsigned gen = 0;
    bool full = false;  // a whole build (not one folder that appeared)
    bool sweep = false;
    bool done = false;
    int error = 0;
    std::vector<Item> batch;
    ~ScanState() {
        if (stream) ::closedir(stream);
    }

    bool open_next() {
        if (stream) ::closedir(stream);
        stream = nullptr;
        while (!folders.empty()) {
            current = std::move(folders.front());
            folders.pop_front();
            prefix = current.empty() ? std::string() : current + "/";
            int fd = current.empty() ? ::openat(dir.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                                     : store_paths::open_beneath(
                                           dir.get(), current, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (fd < 0) {
                if (current.empty()) error = fd == -1 ? -errno : fd;
                continue;  // gone meanwhile (its removal reaches the index through inotify)
            }
            stream = ::fdopendir(fd);
            if (!stream) {
                ::close(fd);
                continue;
            }
            opened = fd;
            return true;
        }
        done = true;
        return false;
    }

    void run() {
        batch.clear();
        skipped.clear();
        opened = -1;
        if (!side)
            side.reset(::openat(dir.get(), DigestMeta::kSidecarDir,
                                O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!stream) {
            open_next();
            return;  // the loop watches it, then the next job reads it
        }
        int at = ::dirfd(stream);
        while (batch.size() < kScanBatch) {
            errno = 0;
            dirent* ent = ::readdir(stream);
            if (!ent) {
                if (current.empty() && errno != 0) error = -errno;
                open_next();
                return;
            }
            const char* n = ent->d_name;
            if (std::strcmp(n, ".") == 0 || std::strcmp(n, "..") == 0) continue;
            if (sweep && current.empty() && store_detail::is_temp_name(n)) {
                ::unlinkat(at, n, 0);  // left by a crash: README "Stop and reload"
                continue;
            }
            std::string path = prefix + n;
            if (!indexable(n)) {
                if (std::string why = skip_reason(n, nullptr); !why.empty())
                    skipped.push_back({std::move(path), std::move(why)});
                continue;
            }
            struct stat st;
            if (::fstatat(at, n, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
            if (S_ISDIR(st.st_mode)) {
                if (path.size() > kMaxPathBytes ||
                    std::size_t(std::count(path.begin(), path.end(), '/')) >= kMaxSegments) {
                    skipped.emplace_back();
                    skipped.back().name = std::move(path);
                    skipped.back().why = kTooDeep;
                    continue;
                }
                Item it{path, Entry{}, true};
                it.entry.dir = true;
                it.entry.state = State::Ready;
                it.entry.mtime_ns = mtime_ns(st);
                batch.push_back(std::move(it));
                folders.push_back(std::move(path));
                continue;
            }
            if (!S_ISREG(st.st_mode)) {
                skipped.push_back({std::move(path), skip_reason(n, &st)});
                continue;
            }
            if (path.size() > kMaxPathBytes) {
                skipped.emplace_back();
                skipped.back().name = std::move(path);
                skipped.back().why = kTooLong;
                continue;
            }
            Item it{path, Entry{}, false};
            it.entry.size = std::uint64_t(st.st_size);
            it.entry.mtime_ns = mtime_ns(st);
            Fd fd(::openat(at, n, store_paths::kReadFlags));
            if (fd && DigestMeta::xattr_record(fd.get(), st, it.entry.sha256))
                it.has_digest = true;
            else if (DigestMeta::sidecar_record(side.get(), path.c_str(), st, it.entry.sha256))
                it.has_digest = true;
            batch.push_back(std::move(it));
        }
    }
};

StoreIndex::StoreIndex(Hooks hooks) : hooks_(std::move(hooks)), feed_(wall_us()) {}
StoreIndex::~StoreIndex() {
    for (ListingStream* ls : streams_) ls->detach(false);
}

void StoreIndex::start(bool sweep_temps, int inherited) {
    if (const char* v = std::getenv("DUET_TEST_MAX_WATCHES"); v && *v)
        max_watches_ = std::size_t(std::strtoul(v, nullptr, 10));
    inotify_.reset(inherited >= 0 ? inherited : ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    if (inotify_) hooks_.loop.add(inotify_.get(), EPOLLIN, this);
    add_watches();
    rebuild(sweep_temps);
}

void StoreIndex::rebuild(bool sweep) {
    ++gen_;
    // Streams still sending keep the rest of what they promised; the new build is not theirs.
    for (ListingStream* ls : streams_) ls->detach(true);
    streams_.clear();
    entries_.clear();
    bytes_ = 0;
    pending_ = 0;
    folders_.clear();
    folders_held_ = 0;
    subtree_scans_ = 0;  // their late results are dropped (gen_)
    // Late results carry the old gen_ and are dropped.
    current_.reset();
    paused_.reset();
    urgent_.clear();
    hash_cursor_.clear();
    dir_ = std::make_shared<Fd>(::fcntl(store().dirfd(), F_DUPFD_CLOEXEC, 0));
    render_.reset();
    changed();
    building_ = true;
    scan_folders({std::string()}, true, sweep);
}

void StoreIndex::scan_folders(std::deque<std::string> folders, bool full, bool sweep) {
    auto st = std::make_shared<ScanState>();
    st->dir.reset(::fcntl(dir_->get(), F_DUPFD_CLOEXEC, 0));
    st->gen = gen_;
    st->full = full;
    st->sweep = sweep;
    st->folders = std::move(folders);
    if (!full) ++subtree_scans_;  // listings wait for it (listing_ready)
    scan_step(std::move(st));
}

void StoreIndex::scan_step(std::shared_ptr<ScanState> st) {
    auto job = std::make_unique<Helpers::Job>();
    job->work = [st] { st->run(); };
    job->done = [this, st] {
        if (st->gen != gen_) return;  // a newer build replaced this one
        // Watched before read (and the top folder is watched already).
        if (st->opened >= 0 && !st->current.empty()) watch_folder(st->current, st->opened);
        for (auto& it : st->batch) {
            auto found = entries_.find(it.name);
            // Something newer (an upload, an event) got there first and is at least as fresh.
            if (found != entries_.end()) continue;
            if (it.entry.dir) {
                set_entry(it.name, it.entry);
                continue;
            }
            if (!it.has_digest)
                it.entry.state = State::Pending;
            else
                it.entry.state = State::Ready;
            set_entry(it.name, it.entry);
        }
        for (auto& sk : st->skipped) skip(sk.name, sk.why);
        pump_hashing();
        if (!st->done) {
            scan_step(st);
            return;
        }
        if (!st->full) {
            --subtree_scans_;
            return hooks_.wake();
        }
        building_ = false;
        feed_.reset();  // whoever follows changes reads the listing again
        if (st->error < 0)
            hooks_.log.log("store index: reading %s: %s", store().path().c_str(),
                           std::strerror(-st->error));
        hooks_.wake();
    };
    hooks_.helpers.submit(std::move(job));
}

std::string StoreIndex::upload_conflict(std::string_view path, bool& is_folder) const {
    is_folder = false;
    for (std::size_t slash = path.find('/'); slash != std::string_view::npos;
         slash = path.find('/', slash + 1)) {
        auto it = entries_.find(path.substr(0, slash));
        if (it == entries_.end()) return {};  // missing: the upload makes it
        if (!it->second.dir) return std::string(path.substr(0, slash));
    }
    is_folder = holds_folder(path);
    return is_folder ? std::string(path) : std::string();
}

void StoreIndex::skip(const std::string& name, const std::string& why) {
    if (why.empty() || skipped_.find(name) != skipped_.end()) return;
    if (skipped_.size() >= kMaxSkippedKept) {
        if (skipped_unlogged_++ == 0)
            hooks_.log.log("store: more than %zu entries skipped; the rest are only counted",
                           kMaxSkippedKept);
        return;
    }
    skipped_.insert(name);
    hooks_.log.log("store: not serving \"%s\": %s", log_escape(name).c_str(), why.c_str());
}

// The store changed: cached listing bodies nobody is sending any more are dropped at once (a
// listing of 100,000 files is 13 MB), those still being sent go with their last reader.
void StoreIndex::changed() {
    ++version_;
    if (json_ && json_.use_count() == 1) json_.reset();
    if (text_ && text_.use_count() == 1) text_.reset();
}

void StoreIndex::set_entry(const std::string& name, const Entry& e) {
    if (!streams_.empty()) before_change(name);
    auto [it, inserted] = entries_.try_emplace(name, e);
    if (!building_ && !quiet_) note_change(name, inserted ? nullptr : &it->second, &e);
    if (!inserted) {
        bytes_ -= std::min(bytes_, it->second.size);
        if (it->second.state == State::Pending) --pending_;
        if (it->second.dir) --folders_held_;
        account(name, it->second, -1);
        it->second = e;
    }
    if (e.dir) ++folders_held_;
    account(name, e, +1);
    bytes_ += e.size;
    if (e.state == State::Pending) ++pending_;
    changed();
}

void StoreIndex::erase(const std::string& name) {
    auto it = entries_.find(name);
    if (it == entries_.end()) return;
    if (!streams_.empty()) before_change(name);
    if (!building_ && !quiet_) note_change(name, &it->second, nullptr);
    bytes_ -= std::min(bytes_, it->second.size);
    if (it->second.state == State::Pending) --pending_;
    if (it->second.dir) --folders_held_;
    account(name, it->second, -1);
    entries_.erase(it);
    changed();
}

// A name changed on disk (inotify) or a hash went stale: look at it again.
// On the loop the name is looked up from the caches only (README "Limits"); a miss goes to a
// helper.
void StoreIndex::refresh(const std::string& name) {
    if (store().gone()) return;
    struct stat st;
    int rc = store().stat_cached(name, st);
    if (rc == -EAGAIN) return refresh_later(name);
    refresh_with(name, rc, st);
}

void StoreIndex::refresh_with(const std::string& name, int rc, const struct stat& st) {
    if (rc != 0 || !S_ISREG(st.st_mode)) {
        if (rc == 0) skip(name, skip_reason(name, &st));
        erase(name);
        return;
    }
    auto it = entries_.find(name);
    if (it != entries_.end() && same_file(it->second, st)) {
        // Our own publish or record write seen again, or a hash of this very version runs.
        if (it->second.state != State::Pending || hashing(name)) return;
        pump_hashing();
        return;
    }
    Entry e;
    e.size = std::uint64_t(st.st_size);
    e.mtime_ns = mtime_ns(st);
    e.state = State::Pending;
    set_entry(name, e);
    pump_hashing();
}

void StoreIndex::folder_made(std::string_view path, const struct stat& st) {
    if (holds_folder(path)) return;
    Entry e;
    e.dir = true;
    e.state = State::Ready;
    e.mtime_ns = mtime_ns(st);
    set_entry(std::string(path), e);
}

void StoreIndex::moved(std::string_view src, std::string_view dst, bool folder) {
    std::string from(src), to(dst);
    // One "moved" event for the whole change (README "The page").
    if (!building_ && entries_.count(from)) note_move(from, to);
    quiet_ = true;
    moved_entry(from, to, folder);
    quiet_ = false;
}

void StoreIndex::moved_entry(const std::string& from, const std::string& to, bool folder) {
    if (folder) {
        // A folder it replaced went to the trash: its entries and watches go.
        folder_gone(to, true);
        // The moved folder keeps its watches (the inodes are the same), under the new path; its
        // entries leave in bulk and are read again at the new path on helpers (listings wait for
        // that read), so no loop step grows with the folder.
        std::string prefix = from + "/";
        std::vector<std::pair<std::string, int>> watches;
        if (auto w = path_wd_.find(from); w != path_wd_.end()) watches.emplace_back(to, w->second);
        for (auto w = path_wd_.lower_bound(prefix);
             w != path_wd_.end() && w->first.compare(0, prefix.size(), prefix) == 0; ++w)
            watches.emplace_back(to + w->first.substr(from.size()), w->second);
        folder_gone(from, false);
        for (auto& [path, wd] : watches) {
            if (auto old = wd_path_.find(wd); old != wd_path_.end()) path_wd_.erase(old->second);
            wd_path_[wd] = path;
            path_wd_[path] = wd;
        }
        folder_appeared(to);
        return;
    }
    auto it = entries_.find(from);
    if (it == entries_.end()) return refresh(to);
    Entry e = it->second;
    erase(from);
    if (auto old = entries_.find(to); old != entries_.end() && old->second.dir)
        folder_gone(to, true);
    set_entry(to, e);
    pump_hashing();
}

void StoreIndex::published(std::string_view name, const struct stat& st, const Digest& d) {
    // Folders the upload created are listed at once (inotify reports them a little later).
    for (std::size_t slash = name.find('/'); slash != std::string_view::npos;
         slash = name.find('/', slash + 1))
        folder_made(name.substr(0, slash), st);
    Entry e;
    e.size = std::uint64_t(st.st_size);
    e.mtime_ns = mtime_ns(st);
    e.sha256 = d;
    e.state = State::Ready;
    set_entry(std::string(name), e);
}

void StoreIndex::removed(std::string_view name) {
    erase(std::string(name));
}

void StoreIndex::sync_dir_later() {
    hooks_.helpers.fsync_later(store().dirfd(), [] {});
}

bool StoreIndex::listing_ready() const {
    return !building_ && pending_ == 0 && subtree_scans_ == 0;
}

}  // namespace duet
