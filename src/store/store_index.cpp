// The in-memory store index. See store_index.hpp.
#include "duet/store/store_index.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <vector>

#include "duet/store/store.hpp"
#include "duet/store/store_meta.hpp"

namespace duet {
namespace {

constexpr std::size_t kScanBatch = 512;               // directory entries per helper job
constexpr std::size_t kHashChunk = 256 * 1024;        // bytes per read while hashing
constexpr std::uint64_t kHashSlice = 64u << 20;       // bytes per helper job; then urgent ones go
constexpr std::uint64_t kDropCacheAbove = 64u << 20;  // hashing a big file must not evict others
constexpr int kReadFlags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
std::int64_t mtime_ns(const struct stat& st) {
    return std::int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

bool same_file(const StoreIndex::Entry& e, const struct stat& st) {
    return e.size == std::uint64_t(st.st_size) && e.mtime_ns == mtime_ns(st);
}

bool indexable(std::string_view name) {
    return valid_name(name);  // dot-names (temporaries, sidecar records) are duet's own
}

}  // namespace

// A helper's hash of one file, a slice per job: its record when that still matches, else its
// bytes. Touches only its own fields and the file system.
struct StoreIndex::HashWork {
    std::shared_ptr<Fd> dir;
    std::string name;
    const std::atomic<bool>* stop = nullptr;
    unsigned gen = 0;
    Fd fd;
    Sha256 sha;
    std::uint64_t off = 0;
    struct stat st {};
    Digest digest{};
    int rc = 0;
    bool finished = false;
    bool stable = false;
    bool in_xattr = false;

    void run() {
        if (!fd) {
            // The status first: a file that cannot be opened (EACCES) still fails for the
            // version the index holds, instead of looking changed.
            if (::fstatat(dir->get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
                rc = -errno;
                finished = true;
                return;
            }
            fd.reset(::openat(dir->get(), name.c_str(), kReadFlags));
            if (!fd || ::fstat(fd.get(), &st) != 0) {
                rc = errno == ELOOP || errno == ENXIO ? -ENOENT : -errno;
                finished = true;
                return;
            }
            if (!S_ISREG(st.st_mode)) {
                rc = -ENOENT;
                finished = true;
                return;
            }
            if (DigestMeta::xattr_record(fd.get(), st, digest)) {
                stable = in_xattr = finished = true;
                return;
            }
            ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
        }
        thread_local std::vector<unsigned char> buf(kHashChunk);
        bool big = std::uint64_t(st.st_size) > kDropCacheAbove;
        std::uint64_t until = off + kHashSlice;
        while (off < until) {
            if (stop->load(std::memory_order_relaxed)) {
                rc = -ECANCELED;
                finished = true;
                return;
            }
            ssize_t n = ::pread(fd.get(), buf.data(), buf.size(), off_t(off));
            if (n < 0) {
                if (errno == EINTR) continue;
                rc = -errno;
                finished = true;
                return;
            }
            if (n == 0) break;
            sha.update(buf.data(), std::size_t(n));
            off += std::uint64_t(n);
            if (big && off % (16u << 20) < std::uint64_t(n))
                ::posix_fadvise(fd.get(), 0, off_t(off), POSIX_FADV_DONTNEED);
        }
        if (off >= until) return;  // more slices to go
        finished = true;
        digest = sha.finish();
        struct stat after;
        stable = off == std::uint64_t(st.st_size) && ::fstat(fd.get(), &after) == 0 &&
                 after.st_size == st.st_size && mtime_ns(after) == mtime_ns(st);
        if (stable) in_xattr = DigestMeta::write_xattr_record(fd.get(), st, digest);
    }
};

// One build: a directory stream read by helpers a batch at a time.
struct StoreIndex::ScanState {
    struct Item {
        std::string name;
        Entry entry;
        bool has_digest;
    };
    Fd dir, side;
    DIR* stream = nullptr;
    unsigned gen = 0;
    bool sweep = false;
    bool done = false;
    int error = 0;
    std::vector<Item> batch;
    ~ScanState() {
        if (stream) ::closedir(stream);
    }

    void run() {
        batch.clear();
        if (!stream) {
            int fd = ::openat(dir.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (fd >= 0) stream = ::fdopendir(fd);
            if (!stream) {
                if (fd >= 0) ::close(fd);
                error = -errno;
                done = true;
                return;
            }
            side.reset(::openat(dir.get(), DigestMeta::kSidecarDir,
                                O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        }
        while (batch.size() < kScanBatch) {
            errno = 0;
            dirent* ent = ::readdir(stream);
            if (!ent) {
                error = -errno;
                done = true;
                return;
            }
            const char* n = ent->d_name;
            if (sweep && store_detail::is_temp_name(n)) {
                ::unlinkat(dir.get(), n, 0);  // left by a crash: SPEC §4
                continue;
            }
            if (!indexable(n)) continue;
            struct stat st;
            if (::fstatat(dir.get(), n, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
                continue;
            Item it{n, Entry{}, false};
            it.entry.size = std::uint64_t(st.st_size);
            it.entry.mtime_ns = mtime_ns(st);
            Fd fd(::openat(dir.get(), n, kReadFlags));
            if (fd && DigestMeta::xattr_record(fd.get(), st, it.entry.sha256))
                it.has_digest = true;
            else if (DigestMeta::sidecar_record(side.get(), n, st, it.entry.sha256))
                it.has_digest = true;
            batch.push_back(std::move(it));
        }
    }
};

StoreIndex::StoreIndex(Hooks hooks) : hooks_(std::move(hooks)) {}
StoreIndex::~StoreIndex() {
    for (ListingStream* ls : streams_) ls->detach(false);
}

void StoreIndex::start(bool sweep_temps, int inherited) {
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
    listed_ = json_bytes_ = text_bytes_ = 0;
    // Late results carry the old gen_ and are dropped.
    current_.reset();
    paused_.reset();
    urgent_.clear();
    hash_cursor_.clear();
    dir_ = std::make_shared<Fd>(::fcntl(store().dirfd(), F_DUPFD_CLOEXEC, 0));
    render_.reset();
    changed();
    building_ = true;
    auto st = std::make_shared<ScanState>();
    st->dir.reset(::fcntl(dir_->get(), F_DUPFD_CLOEXEC, 0));
    st->gen = gen_;
    st->sweep = sweep;
    scan_step(std::move(st));
}

void StoreIndex::scan_step(std::shared_ptr<ScanState> st) {
    auto job = std::make_unique<Helpers::Job>();
    job->work = [st] { st->run(); };
    job->done = [this, st] {
        if (st->gen != gen_) return;  // a newer build replaced this one
        for (auto& it : st->batch) {
            auto found = entries_.find(it.name);
            // Something newer (an upload, an event) got there first and is at least as fresh.
            if (found != entries_.end()) continue;
            if (!it.has_digest)
                it.entry.state = State::Pending;
            else
                it.entry.state = State::Ready;
            set_entry(it.name, it.entry);
        }
        pump_hashing();
        if (!st->done) {
            scan_step(st);
            return;
        }
        building_ = false;
        if (st->error < 0)
            hooks_.log.log("store index: reading %s: %s", store().path().c_str(),
                     std::strerror(-st->error));
        hooks_.wake();
    };
    hooks_.helpers.submit(std::move(job));
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
    if (!inserted) {
        bytes_ -= std::min(bytes_, it->second.size);
        if (it->second.state == State::Pending) --pending_;
        account(name, it->second, -1);
        it->second = e;
    }
    account(name, e, +1);
    bytes_ += e.size;
    if (e.state == State::Pending) ++pending_;
    changed();
}

void StoreIndex::erase(const std::string& name) {
    auto it = entries_.find(name);
    if (it == entries_.end()) return;
    if (!streams_.empty()) before_change(name);
    bytes_ -= std::min(bytes_, it->second.size);
    if (it->second.state == State::Pending) --pending_;
    account(name, it->second, -1);
    entries_.erase(it);
    changed();
}

void StoreIndex::hash(const std::string& name, bool urgent) {
    if (urgent && !(current_ && current_->name == name && current_urgent_) &&
        std::find(urgent_.begin(), urgent_.end(), name) == urgent_.end())
        urgent_.push_back(name);
    pump_hashing();
}

bool StoreIndex::hashing(const std::string& name) const {
    return (current_ && current_->name == name) || (paused_ && paused_->name == name);
}

void StoreIndex::pump_hashing() {
    if (current_ || store().gone() || !dir_ || !*dir_) return;
    std::shared_ptr<HashWork> next;
    bool urgent = false;
    while (!next && !urgent_.empty()) {
        std::string n = std::move(urgent_.front());
        urgent_.pop_front();
        auto e = entries_.find(n);
        if (e == entries_.end() || e->second.state != State::Pending) continue;
        if (paused_ && paused_->name == n) {
            next = std::move(paused_);  // it was set aside: go on with it first
        } else {
            next = std::make_shared<HashWork>();
            next->name = std::move(n);
        }
        urgent = true;
    }
    if (!next && paused_) next = std::move(paused_);
    if (!next && pending_ > 0) {
        // The next Pending entry in name order, a bounded walk per call.
        auto it = hash_cursor_.empty() ? entries_.begin() : entries_.upper_bound(hash_cursor_);
        const std::string* last = nullptr;
        int n = 0;
        for (; n < 4096; ++n, ++it) {
            if (it == entries_.end()) {
                if (hash_cursor_.empty()) break;
                hash_cursor_.clear();
                it = entries_.begin();
                if (it == entries_.end()) break;
            }
            last = &it->first;
            if (it->second.state == State::Pending) {
                hash_cursor_ = it->first;
                next = std::make_shared<HashWork>();
                next->name = it->first;
                break;
            }
        }
        if (!next && n == 4096 && last) {
            hash_cursor_ = *last;  // 4096 hashed entries in a row: on from here next step
            walk_due_ = true;
        }
    }
    if (!next) return;
    if (!next->dir) {
        next->dir = dir_;
        next->stop = &hooks_.helpers.stop_flag();
        next->gen = gen_;
    }
    current_ = next;
    current_urgent_ = urgent;
    auto job = std::make_unique<Helpers::Job>();
    job->work = [next] { next->run(); };
    job->done = [this, next] { hash_done(next); };
    job->background = !urgent;
    hooks_.helpers.submit(std::move(job), urgent);
}

void StoreIndex::hash_done(const std::shared_ptr<HashWork>& w) {
    if (w->gen != gen_ || current_ != w) return;
    current_.reset();
    if (w->rc == -ECANCELED) return;
    if (!w->finished) {
        // Between slices: someone waits for another file, so that one goes first.
        if (!current_urgent_ && !urgent_.empty() && !paused_) {
            paused_ = w;
            pump_hashing();
            return;
        }
        current_ = w;  // on with this file
        auto job = std::make_unique<Helpers::Job>();
        job->work = [w] { w->run(); };
        job->done = [this, w] { hash_done(w); };
        job->background = !current_urgent_;
        hooks_.helpers.submit(std::move(job), current_urgent_);
        return;
    }
    auto e = entries_.find(w->name);
    if (w->rc == -ENOENT || e == entries_.end()) {
        refresh(w->name);  // gone, or replaced by something that is not a regular file
    } else if (!same_file(e->second, w->st) || (w->rc == 0 && !w->stable)) {
        refresh(w->name);  // changed while we read it: hash the newer version
    } else if (w->rc < 0) {
        Entry f = e->second;
        f.state = State::Failed;
        f.error = std::int8_t(-w->rc > 127 ? EIO : -w->rc);
        set_entry(w->name, f);
    } else {
        Entry r = e->second;
        r.sha256 = w->digest;
        r.state = State::Ready;
        set_entry(w->name, r);
        if (!w->in_xattr) store().meta().remember_by_name(w->name, w->st, w->digest);
    }
    hooks_.wake();
    pump_hashing();
}

// A name changed on disk (inotify) or a hash went stale: look at it again.
// On the loop the name is looked up from the caches only (SPEC §5); a miss goes to a helper.
void StoreIndex::refresh(const std::string& name) {
    if (store().gone()) return;
    struct stat st;
    int rc = store().stat_cached(name, st);
    if (rc == -EAGAIN) return refresh_later(name);
    refresh_with(name, rc, st);
}

void StoreIndex::refresh_with(const std::string& name, int rc, const struct stat& st) {
    if (rc != 0 || !S_ISREG(st.st_mode)) {
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

int StoreIndex::digest_for(std::string_view name, const struct stat& st, Digest& out) {
    auto it = entries_.find(name);
    if (it != entries_.end() && same_file(it->second, st)) {
        if (it->second.state == State::Ready) {
            out = it->second.sha256;
            return 0;
        }
        if (it->second.state == State::Failed) return -it->second.error;
    }
    return -EINPROGRESS;
}

void StoreIndex::published(std::string_view name, const struct stat& st, const Digest& d) {
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

void StoreIndex::need(std::string_view name, const struct stat& st) {
    std::string n(name);
    auto it = entries_.find(n);
    if (it == entries_.end() || !same_file(it->second, st) || it->second.state != State::Pending) {
        Entry e;
        e.size = std::uint64_t(st.st_size);
        e.mtime_ns = mtime_ns(st);
        e.state = State::Pending;
        set_entry(n, e);
    }
    hash(n, true);
}

bool StoreIndex::listing_ready() const {
    return !building_ && pending_ == 0;
}

}  // namespace duet
