// An append to a partial upload and its checkpoints (README "Disk I/O off the loop"): the bytes
// are written and hashed on a helper (the append's pipe, write_pipe.hpp), and each checkpoint
// (fdatasync of the data, the state file replaced durably, the partial directory fsynced) runs on a
// helper thread. The offset a client is told only moves when a checkpoint is done, on the loop:
// never past durable bytes. One checkpoint per partial at a time, so state files are renamed in the
// order they were asked.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "duet/store/partial_state_file.hpp"
#include "duet/store/partial_store.hpp"

namespace duet {
namespace {

constexpr std::uint64_t kBacklogCheckpoints = 3;

}  // namespace

// ---- PartialAppend ------------------------------------------------------------------------------

int PartialAppend::write(const void* data, std::size_t len) {
    if (!p_) return -EBADF;
    if (p_->gone) return -ECANCELED;
    if (write_error_ < 0) return write_error_;
    if (int rc = failed(); rc < 0) return rc;  // those bytes may be lost: the append stops
    if (!pipe_.active())
        pipe_.open(store_->store_->pipe_runner(), std::move(fd_), offset_, sha_,
                   hold_ ? &append_sha_ : nullptr, PartialStore::kWritebackBytes);
    if (int rc = pipe_.write(data, len); rc < 0) {
        settle_now();
        return rc;
    }
    offset_ += len;
    since_checkpoint_ += len;
    return 0;
}

int PartialAppend::settle() {
    if (!pipe_.active()) return 0;
    if (!pipe_.idle()) return -EINPROGRESS;
    sha_ = pipe_.sha();
    if (hold_) append_sha_ = pipe_.extra();
    if (int rc = pipe_.error(); rc < 0) {
        write_error_ = rc;
        offset_ = pipe_.offset();  // the file holds these bytes: a checkpoint keeps them
    }
    fd_ = pipe_.take_file();
    return 0;
}

void PartialAppend::settle_now() {
    pipe_.wait_idle();
    settle();
}

bool PartialAppend::backlogged() {
    if (!p_) return false;
    if (pipe_.backlogged()) return true;
    // One checkpoint in flight at a time; a reload waiting for them starts no new one. Its
    // hash state is the one after the last byte taken: the pipe drains first.
    if (!hold_ && !syncing() && !store_->held_ && failed() == 0 && write_error_ == 0 &&
        since_checkpoint_ >= PartialStore::kCheckpointBytes) {
        if (settle() == -EINPROGRESS) return true;
        checkpoint();
    }
    // Reading pauses only when three more checkpoints' worth arrived behind the one running: a
    // fast sender keeps the disk busy without waiting on each fdatasync, and at most ~64 MiB are
    // ever not yet durable (what a crash makes the client send again).
    return syncing() && since_checkpoint_ >= kBacklogCheckpoints * PartialStore::kCheckpointBytes;
}

std::shared_ptr<DiskWait> PartialAppend::checkpoint() {
    if (!p_ || hold_) return nullptr;  // held: nothing of this append is durable before its end
    settle_now();  // at most a few buffers: the pipe drains before the hash state is read
    if (failed() < 0) return last_;
    if (offset_ == p_->offset || (last_ && last_->offset == offset_)) return last_;
    since_checkpoint_ = 0;
    last_ = store_->request_checkpoint(p_, fd_.get(), offset_, sha_);
    return last_;
}

bool PartialAppend::append_digest_is(const Digest& digest) {
    settle_now();
    Sha256 copy = append_sha_;
    return copy.finish() == digest;
}

void PartialAppend::rollback() {
    if (!p_) return;
    if (pipe_.active()) {
        pipe_.abandon(true);  // no helper writes past the truncation below
        fd_ = pipe_.take_file();
    }
    offset_ = start_;
    sha_ = start_sha_;
    append_sha_.reset();
    since_checkpoint_ = 0;
    write_error_ = 0;
    if (fd_) (void)::ftruncate(fd_.get(), off_t(start_));
}

std::shared_ptr<DiskWait> PartialAppend::finish() {
    if (p_ && !hold_ && !p_->gone && pipe_.active() && !pipe_.idle()) return finish_later();
    auto out = std::make_shared<DiskWait>();
    finish_into(out);
    return out;
}

// The pipe still holds bytes: the append's state moves to an object only the pipe's continuation
// reaches, which ends it once they are written, on the loop. Meanwhile the partial stays busy (no
// other append can start from a stale offset), a request on it waits for `out`
// (PartialStore::pending_sync), and a reload waits as for a checkpoint (syncing()).
std::shared_ptr<DiskWait> PartialAppend::finish_later() {
    auto out = std::make_shared<DiskWait>();
    auto rest = std::make_shared<PartialAppend>();
    rest->store_ = std::exchange(store_, nullptr);
    rest->p_ = std::move(p_);
    rest->fd_ = std::move(fd_);
    rest->sha_ = sha_;
    rest->start_sha_ = start_sha_;
    rest->append_sha_ = append_sha_;
    rest->offset_ = offset_;
    rest->start_ = start_;
    rest->since_checkpoint_ = since_checkpoint_;
    rest->write_error_ = std::exchange(write_error_, 0);
    rest->last_ = std::move(last_);
    rest->pipe_ = std::move(pipe_);
    pipe_ = WritePipe();
    rest->p_->active = nullptr;
    rest->p_->finishing = out;
    PartialStore* store = rest->store_;
    ++store->syncing_;
    WritePipe& pipe = rest->pipe_;
    pipe.finish(false, [rest, out, store] {
        --store->syncing_;
        PartialRef p = rest->p_;
        rest->finish_into(out);
        if (p->finishing == out && out->done) p->finishing.reset();
    });
    return out;
}

void PartialAppend::finish_into(const std::shared_ptr<DiskWait>& out) {
    if (!p_) {
        out->done = true;
        return;
    }
    std::shared_ptr<Checkpoint> last;
    if (hold_) {
        rollback();
    } else if (p_->gone) {
        out->rc = -ECANCELED;
    } else if (settle_now(); failed() < 0) {
        out->rc = failed();
    } else {
        // After a write error too: what was written before it is kept, but the error is the
        // append's result (the client is told the durable offset to go on from).
        checkpoint();
        if (write_error_ < 0)
            out->rc = write_error_;
        else
            last = last_;
    }
    // Bytes that could not be made durable are not part of the partial: the next append
    // starts at the durable offset (and truncates there). Until the last checkpoint is done the
    // partial stays busy: a new append would truncate under it.
    p_->active = nullptr;
    if (p_->syncing || p_->queued)
        p_->release_when_synced = true;
    else
        p_->busy = false;
    p_.reset();
    if (pipe_.active()) pipe_.abandon(false);  // cancelled: what is left is not kept
    pipe_.close();
    fd_.reset();
    store_ = nullptr;
    hold_ = false;
    write_error_ = 0;
    last_.reset();
    if (last && !last->done) {
        last->followers.push_back(out);  // done with the checkpoint, with its rc
    } else {
        if (last) out->rc = last->rc;
        out->done = true;
    }
}

// ---- PartialStore: the checkpoints --------------------------------------------------------------

std::shared_ptr<Checkpoint> PartialStore::request_checkpoint(const PartialRef& p, int data_fd,
                                                             std::uint64_t offset,
                                                             const Sha256& sha) {
    std::shared_ptr<Checkpoint>& slot = p->syncing ? p->queued : p->syncing;
    if (!slot) {
        slot = std::make_shared<Checkpoint>();
        slot->data.reset(::fcntl(data_fd, F_DUPFD_CLOEXEC, 0));
    }
    // A queued checkpoint not yet started takes the newest offset: its waiters get more.
    slot->offset = offset;
    slot->sha = sha;
    std::shared_ptr<Checkpoint> cp = slot;
    if (cp == p->syncing) start_sync(p);
    return cp;
}

// Hands p->syncing to a helper. Its state text is made here, on the loop, from the partial as
// it stands (a later set_spec cannot run meanwhile: the partial is busy).
void PartialStore::start_sync(const PartialRef& p) {
    std::shared_ptr<Checkpoint> cp = p->syncing;
    ++syncing_;
    Partial next = *p;
    next.offset = cp->offset;
    next.sha = cp->sha;
    next.touched = partial_detail::wall_now();
    auto dir = std::make_shared<Fd>(dir_ ? ::fcntl(dir_.get(), F_DUPFD_CLOEXEC, 0) : -1);
    auto rc = std::make_shared<int>(cp->data && *dir ? 0 : -EBADF);
    auto job = std::make_unique<Helpers::Job>();
    job->work = [cp, dir, rc, name = path(p->id, ".state"),
                 text = partial_detail::serialize(next)] {
        if (*rc < 0) return;
        // Data first, then the state that announces it: a crash between them leaves the old
        // state, which the data file covers.
        if (::fdatasync(cp->data.get()) != 0) {
            *rc = -errno;
            return;
        }
        *rc = partial_detail::replace_file(dir->get(), name, text);
    };
    job->done = [this, p, rc, touched = next.touched] {
        p->touched = *rc == 0 && !p->gone ? touched : p->touched;
        sync_done(p, *rc);
    };
    if (helpers_) {
        helpers_->submit(std::move(job));
    } else {
        job->work();
        job->done();
    }
}

void PartialStore::sync_done(const PartialRef& p, int rc) {
    --syncing_;
    std::shared_ptr<Checkpoint> cp = std::move(p->syncing);
    cp->data.reset();
    if (p->gone) {
        // Cancelled meanwhile: drop() removed the files, but the rename may have come after.
        if (dir_) ::unlinkat(dir_.get(), path(p->id, ".state").c_str(), 0);
        if (rc == 0) rc = -ECANCELED;
    } else if (rc == 0 && cp->offset > p->offset) {
        metrics_->partial_bytes += cp->offset - p->offset;
        p->offset = cp->offset;
        p->sha = cp->sha;
    }
    cp->rc = rc;
    cp->done = true;
    for (std::shared_ptr<DiskWait>& f : cp->followers) {
        f->rc = rc;
        f->done = true;
    }
    cp->followers.clear();
    if (std::shared_ptr<Checkpoint> next = std::move(p->queued)) {
        p->syncing = next;
        if (rc < 0) {
            // After a failed fdatasync the kernel may have dropped the dirty pages: a later sync
            // could succeed without them. The queued checkpoint fails too.
            ++syncing_;
            sync_done(p, rc);
            return;
        }
        start_sync(p);
    } else if (p->release_when_synced) {
        p->release_when_synced = false;
        p->busy = false;
    }
    if (synced_) synced_();
}

}  // namespace duet
