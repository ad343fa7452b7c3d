// The partial-upload store: durable bytes and state of unfinished uploads, shared by the IETF
// draft, tus and the file port. The state file and its durable replacement are in
// partial_state_file.cpp; an append's checkpoints run on helper threads (partial_checkpoint.cpp).
#include "duet/store/partial_store.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "duet/store/partial_state_file.hpp"
#include "duet/store/store_meta.hpp"
#include "duet/store/store_paths.hpp"

namespace duet {
namespace {
using namespace partial_detail;

// The bytes of an append are on disk (data only: the size is covered by the state's offset).
int sync_data(int fd) {
    return ::fdatasync(fd) == 0 ? 0 : -errno;
}

void sync_dir(int dirfd) {
    ::fsync(dirfd);
}

bool ends_with(std::string_view s, std::string_view tail) {
    return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

}  // namespace

// ---- PartialStore -------------------------------------------------------------------------------

std::string PartialStore::path(const std::string& id, const char* ext) const {
    return id + ext;
}

bool PartialStore::open(Store& store, Metrics& metrics, std::int64_t ttl_seconds,
                        std::string& err) {
    store_ = &store;
    metrics_ = &metrics;
    ttl_ = ttl_seconds;
    parts_.clear();
    dir_.reset();
    // The directory is made by the first partial (a store that never had one stays as it was).
    int fd = ::openat(store.dirfd(), kDir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT) return true;
        err = std::string("cannot open ") + kDir + ": " + std::strerror(errno);
        return false;
    }
    dir_.reset(fd);
    std::int64_t now = wall_now();
    std::vector<std::string> states, others;
    store_detail::for_each_entry(fd, [&](const char* name) {
        std::string_view n(name);
        if (ends_with(n, ".state") && valid_id(n.substr(0, n.size() - 6)))
            states.emplace_back(n.substr(0, n.size() - 6));
        else
            others.emplace_back(n);
    });
    for (const std::string& id : states)
        if (!load_one(id, now)) drop(id);
    // Leftovers: temporary state files and data whose state never became durable.
    for (const std::string& n : others) {
        bool live_data = ends_with(n, ".data") && parts_.count(n.substr(0, n.size() - 5));
        if (!live_data) ::unlinkat(fd, n.c_str(), 0);
    }
    sync_dir(fd);
    account();
    return true;
}

int PartialStore::ensure_dir() {
    if (dir_) return 0;
    if (!store_) return -EBADF;
    int sd = store_->dirfd();
    if (::mkdirat(sd, kDir, 0700) != 0 && errno != EEXIST) return -errno;
    int fd = ::openat(sd, kDir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return -errno;
    dir_.reset(fd);
    sync_dir(sd);
    return 0;
}

bool PartialStore::load_one(const std::string& id, std::int64_t now) {
    std::string text;
    if (read_small(dir_.get(), path(id, ".state"), text) < 0) return false;
    auto p = std::make_shared<Partial>();
    p->id = id;
    if (!parse_state(text, *p)) return false;
    if (now - p->touched >= ttl_) {
        ++metrics_->partials_expired;
        return false;
    }
    struct stat st;
    if (::fstatat(dir_.get(), path(id, ".data").c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISREG(st.st_mode) || std::uint64_t(st.st_size) < p->offset)
        return false;  // bytes lost: the draft says deactivate, never report a smaller offset
    // Published just before a crash: the name already holds these very bytes.
    struct stat target;
    Fd looked(p->offset == p->spec.length
                  ? store_paths::open_beneath(store_->dirfd(), p->spec.name, O_PATH | O_CLOEXEC)
                  : -1);
    if (looked && ::fstat(looked.get(), &target) == 0 && target.st_ino == st.st_ino &&
        target.st_dev == st.st_dev)
        return false;
    parts_.emplace(id, std::move(p));
    return true;
}

void PartialStore::drop(const std::string& id) {
    if (!dir_) return;
    ::unlinkat(dir_.get(), path(id, ".state").c_str(), 0);
    ::unlinkat(dir_.get(), path(id, ".data").c_str(), 0);
    sync_dir(dir_.get());
    auto it = parts_.find(id);
    if (it != parts_.end()) {
        it->second->gone = true;
        parts_.erase(it);
    }
    account();
}

void PartialStore::account() {
    std::uint64_t bytes = 0;
    for (auto& [id, p] : parts_) bytes += p->offset;
    metrics_->partials_open = parts_.size();
    metrics_->partial_bytes = bytes;
}

int PartialStore::write_state(const Partial& p) {
    // A checkpoint on a helper is replacing this very file (through the same temporary name):
    // never two writers at once. Only a request racing an append that just ended gets here.
    if (p.syncing) return -EBUSY;
    return replace_file(dir_.get(), path(p.id, ".state"), serialize(p));
}

PartialRef PartialStore::create(const PartialSpec& spec, int& rc) {
    if ((rc = ensure_dir()) < 0) return nullptr;
    auto p = std::make_shared<Partial>();
    p->id = new_id();
    if (p->id.empty()) {
        rc = -EAGAIN;
        return nullptr;
    }
    p->spec = spec;
    p->created = p->touched = wall_now();
    int fd = ::openat(dir_.get(), path(p->id, ".data").c_str(),
                      O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        rc = -errno;
        return nullptr;
    }
    ::close(fd);
    if ((rc = write_state(*p)) < 0) {
        ::unlinkat(dir_.get(), path(p->id, ".data").c_str(), 0);
        return nullptr;
    }
    parts_.emplace(p->id, p);
    account();
    return p;
}

int PartialStore::create_async(const PartialSpec& spec, StoreOpRef& op) {
    if (int rc = ensure_dir(); rc < 0) return rc;
    auto p = std::make_shared<Partial>();
    p->id = new_id();
    if (p->id.empty()) return -EAGAIN;
    p->spec = spec;
    p->created = p->touched = wall_now();
    struct Job {
        Fd dir;
        std::string data, state, text;
        int rc = 0;
    };
    auto job = std::make_shared<Job>();
    job->dir.reset(::fcntl(dir_.get(), F_DUPFD_CLOEXEC, 0));
    if (!job->dir) return -errno;
    job->data = path(p->id, ".data");
    job->state = path(p->id, ".state");
    job->text = serialize(*p);
    auto created = std::make_shared<PartialCreateOp>();
    created->kind = StoreOp::Kind::PartialCreate;
    op = created;
    auto work = [job] {
        int dir = job->dir.get();
        int fd = ::openat(dir, job->data.c_str(),
                          O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0) {
            job->rc = -errno;
            return;
        }
        ::close(fd);
        job->rc = replace_file(dir, job->state, job->text);
        if (job->rc < 0) ::unlinkat(dir, job->data.c_str(), 0);
    };
    auto done = [this, job, created, p] {
        created->rc = job->rc;
        created->done = true;
        if (job->rc < 0) return;
        parts_.emplace(p->id, p);
        account();
        created->partial = p;
    };
    store_->run_offloaded(std::move(work), std::move(done));
    return 0;
}

PartialRef PartialStore::adopt(Upload& up, const PartialSpec& spec, int& rc) {
    rc = up.active() ? up.settle_now() : -EBADF;  // keeps what made it to the file
    if (rc == 0) rc = up.fd_ ? ensure_dir() : -EBADF;
    if (rc < 0) {
        up.abort();
        return nullptr;
    }
    auto p = std::make_shared<Partial>();
    p->id = new_id();
    p->spec = spec;
    p->created = p->touched = wall_now();
    p->offset = up.size_;
    p->sha = up.sha_;
    std::string data = path(p->id, ".data");
    char proc[64];
    std::snprintf(proc, sizeof proc, "/proc/self/fd/%d", up.fd_.get());
    int linked = ::linkat(AT_FDCWD, proc, dir_.get(), data.c_str(), AT_SYMLINK_FOLLOW);
    if (linked != 0 && errno == ENOENT)
        linked = ::linkat(up.fd_.get(), "", dir_.get(), data.c_str(), AT_EMPTY_PATH);
    if (linked != 0 || p->id.empty()) {
        rc = p->id.empty() ? -EAGAIN : -errno;
        up.abort();
        return nullptr;
    }
    rc = sync_data(up.fd_.get());
    if (rc == 0) rc = write_state(*p);
    up.abort();  // drops the temporary name (if any); the data keeps its partial name
    if (rc < 0) {
        ::unlinkat(dir_.get(), data.c_str(), 0);
        return nullptr;
    }
    parts_.emplace(p->id, p);
    account();
    return p;
}

PartialRef PartialStore::find(std::string_view id) const {
    auto it = parts_.find(id);
    return it == parts_.end() ? nullptr : it->second;
}

PartialRef PartialStore::find_named(std::string_view name, std::uint64_t length) const {
    PartialRef best;
    for (auto& [id, p] : parts_) {
        if (p->spec.name != name || p->spec.length != length) continue;
        if (!best || p->touched > best->touched) best = p;
    }
    return best;
}

std::vector<PartialRef> PartialStore::list(std::string_view name) const {
    std::vector<PartialRef> out;
    for (auto& [id, p] : parts_)
        if (name.empty() || p->spec.name == name) out.push_back(p);
    std::sort(out.begin(), out.end(), [](const PartialRef& a, const PartialRef& b) {
        if (a->spec.name != b->spec.name) return a->spec.name < b->spec.name;
        if (a->created != b->created) return a->created < b->created;
        return a->id < b->id;
    });
    return out;
}

int PartialStore::begin_append(const PartialRef& p, PartialAppend& ap) {
    ap.end();
    if (!p || p->gone || !dir_) return -ECANCELED;
    if (p->busy) return -EBUSY;
    int fd = ::openat(dir_.get(), path(p->id, ".data").c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return -errno;
    // Bytes past the durable offset (written before a crash or a failed checkpoint) were never
    // announced: drop them so the file and the hash state agree.
    if (::ftruncate(fd, off_t(p->offset)) != 0) {
        int e = errno;
        ::close(fd);
        return -e;
    }
    if (p->offset > 0) ++metrics_->partials_resumed;
    p->busy = true;
    p->active = &ap;
    ap.store_ = this;
    ap.p_ = p;
    ap.fd_.reset(fd);
    ap.sha_ = p->sha;
    ap.start_sha_ = p->sha;
    ap.append_sha_.reset();
    ap.offset_ = ap.start_ = p->offset;
    ap.since_checkpoint_ = 0;
    ap.write_error_ = 0;
    ap.hold_ = false;
    ap.last_.reset();
    return 0;
}

int PartialStore::set_length(Partial& p, std::uint64_t length) {
    if (p.spec.length == length) return 0;
    Partial next = p;
    next.spec.length = length;
    if (int rc = write_state(next); rc < 0) return rc;
    p.spec.length = length;
    return 0;
}

int PartialStore::set_spec(Partial& p, const PartialSpec& spec) {
    Partial next = p;
    next.spec = spec;
    if (int rc = write_state(next); rc < 0) return rc;
    p.spec = spec;
    return 0;
}

int PartialStore::publish(const PartialRef& ref, StoreOpRef& op) {
    Partial& p = *ref;
    if (p.gone) return -ECANCELED;
    if (p.offset != p.spec.length) return -EINVAL;
    if (store_->mutating(p.spec.name)) return -EINPROGRESS;  // park; woken when that is done
    int fd = ::openat(dir_.get(), path(p.id, ".data").c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return -errno;
    // Hand the bytes to an Upload: the same publish as PUT (digest record, rename over the name
    // on a helper); the caller syncs the store directory (on a helper too).
    Upload up;
    up.store_ = store_;
    up.fd_.reset(fd);
    up.sha_ = p.sha;
    up.size_ = p.offset;
    up.data_synced_ = true;     // every append ended with an fdatasync
    up.defer_dir_sync_ = true;  // the caller syncs the directory (on a helper)
    // The precondition is re-checked right before the rename (compare-and-swap, as for PUT);
    // its -ECANCELED is told apart from a cancelled partial as -ESTALE.
    int rc = up.commit_async(p.spec.name, p.spec.has_expected ? &p.spec.expected : nullptr,
                             p.spec.pre, op, [this, ref](StoreOp& done) {
                                 if (done.rc == -ECANCELED) done.rc = -ESTALE;
                                 if ((done.rc == 0 || done.rc == -ESTALE) && !ref->gone)
                                     drop(ref->id);
                             });
    if (rc == -ECANCELED) rc = -ESTALE;
    if (rc == -EBADMSG || rc == -ESTALE) drop(p.id);
    return rc;  // -EINPROGRESS: `up` closes its fd and nothing else happened
}

int PartialStore::publish(const PartialRef& ref, FileInfo& out, bool& created) {
    created = false;
    StoreOpRef op;
    if (int rc = publish(ref, op); rc < 0) return rc;
    if (!op->done) return -EINPROGRESS;  // a store with an offload: use the other publish
    if (op->rc < 0) return op->rc;
    out = op->info;
    created = op->created;
    return ::fsync(store_->dirfd()) == 0 ? 0 : -errno;
}

void PartialStore::remove(const PartialRef& p) {
    if (p && !p->gone) drop(p->id);
}

bool PartialStore::sweep(std::int64_t now, std::size_t budget) {
    auto it = parts_.upper_bound(sweep_cursor_);
    if (it == parts_.end()) it = parts_.begin();
    // Looking is cheap; the unlinks and the directory fsync of what expired run on a helper,
    // in one job per step, so expiry keeps up with any rate of creation.
    std::vector<std::string> files;
    std::uint64_t bytes = 0;
    for (std::size_t seen = 0; it != parts_.end() && seen < budget; ++seen) {
        sweep_cursor_ = it->first;
        Partial& p = *it->second;
        if (p.busy || now - p.touched < ttl_) {
            ++it;
            continue;
        }
        ++metrics_->partials_expired;
        files.push_back(path(p.id, ".state"));
        files.push_back(path(p.id, ".data"));
        bytes += p.offset;
        p.gone = true;
        it = parts_.erase(it);
    }
    bool more = it != parts_.end();
    if (!more) sweep_cursor_.clear();
    if (files.empty()) return more;
    // The gauges without a walk over every partial (account()): the step stays bounded.
    metrics_->partials_open = parts_.size();
    metrics_->partial_bytes -= std::min(bytes, metrics_->partial_bytes);
    if (!dir_) return more;
    auto dir = std::make_shared<Fd>(::fcntl(dir_.get(), F_DUPFD_CLOEXEC, 0));
    store_->run_offloaded(
        [dir, files = std::move(files)] {
            if (!*dir) return;
            for (const std::string& f : files) ::unlinkat(dir->get(), f.c_str(), 0);
            sync_dir(dir->get());
        },
        [] {});
    return more;
}

bool PartialStore::token_allows(const Partial& p, std::string_view token) {
    if (p.spec.token_hash.empty()) return true;
    if (token.empty()) return false;
    std::string h = hash_token(token);
    // Constant time over the fixed-length hex digests.
    unsigned diff = h.size() ^ p.spec.token_hash.size();
    for (std::size_t i = 0; i < h.size() && i < p.spec.token_hash.size(); ++i)
        diff |= unsigned(h[i] ^ p.spec.token_hash[i]);
    return diff == 0;
}

std::string PartialStore::hash_token(std::string_view token) {
    return to_hex(Sha256::of(token));
}

}  // namespace duet
