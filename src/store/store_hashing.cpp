// The store index's digests: files hashed on helper threads a slice at a time, one file at a
// time, the one someone waits for first (see store_index.hpp).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <vector>

#include "duet/store/store.hpp"
#include "duet/store/store_index.hpp"
#include "duet/store/store_meta.hpp"
#include "duet/store/store_paths.hpp"

namespace duet {
namespace {

constexpr std::size_t kHashChunk = 256 * 1024;        // bytes per read while hashing
constexpr std::uint64_t kHashSlice = 64u << 20;       // bytes per helper job; then urgent ones go
constexpr std::uint64_t kDropCacheAbove = 64u << 20;  // hashing a big file must not evict others

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
            // Beneath the store through no symlink (store_paths.hpp), as every lookup.
            int p = store_paths::open_beneath(dir->get(), name, O_PATH | O_CLOEXEC);
            if (p < 0 || ::fstat(p, &st) != 0) {
                rc = p < 0 ? p : -errno;
                if (p >= 0) ::close(p);
                finished = true;
                return;
            }
            ::close(p);
            int f = store_paths::open_beneath(dir->get(), name, store_paths::kReadFlags);
            if (f >= 0) fd.reset(f);
            if (f < 0 || ::fstat(fd.get(), &st) != 0) {
                int e = f < 0 ? -f : errno;
                rc = e == ELOOP || e == ENXIO ? -ENOENT : -e;
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

}  // namespace duet
