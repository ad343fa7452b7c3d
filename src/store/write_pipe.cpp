// An upload's bytes written and hashed on a helper, in order. See write_pipe.hpp.
#include "duet/store/write_pipe.hpp"

#include <fcntl.h>  // sync_file_range
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace duet {

struct WritePipe::State {
    Runner runner;
    Fd file;
    std::uint64_t writeback_every = 0;
    std::uint64_t written_back = 0;  // helper side, like offset

    std::mutex mu;
    std::condition_variable cv;
    // Under mu.
    std::deque<Buffer> queued;
    std::vector<std::unique_ptr<char[]>> spare;
    bool in_hand = false;     // a buffer is being written (by a helper, or the loop in wait_idle)
    bool wants_wake = false;  // the loop waits for room or for the end
    bool dropped = false;
    bool sync_asked = false, synced = false;
    int error = 0;

    // Written only with a buffer in hand; read by the loop once idle.
    std::uint64_t offset = 0;
    Sha256 sha, extra;
    bool with_extra = false;

    // Loop only.
    bool submitted = false;  // a job is queued or running
    std::shared_ptr<DiskWait> finished;
};

namespace {

// Writes b at the pipe's offset and hashes what was written, a prefix of b after an error.
int write_buffer(int fd, const char* p, std::size_t len, std::uint64_t& offset, Sha256& sha,
                 Sha256* extra) {
    while (len > 0) {
        ssize_t n = ::pwrite(fd, p, len, off_t(offset));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return n < 0 ? -errno : -EIO;
        sha.update(p, std::size_t(n));
        if (extra) extra->update(p, std::size_t(n));
        p += n;
        len -= std::size_t(n);
        offset += std::uint64_t(n);
    }
    return 0;
}

}  // namespace

void WritePipe::open(const Runner& runner, Fd file, std::uint64_t offset, const Sha256& sha,
                     const Sha256* extra, std::uint64_t writeback_every) {
    auto s = std::make_shared<State>();
    s->file = std::move(file);
    s->runner = runner;
    s->writeback_every = writeback_every;
    s->offset = s->written_back = offset;
    s->sha = sha;
    if (extra) {
        s->extra = *extra;
        s->with_extra = true;
    }
    s_ = std::move(s);
    cur_.reset();
    cur_size_ = 0;
}

Fd WritePipe::take_file() {
    Fd file;
    if (!s_) return file;
    {
        std::lock_guard<std::mutex> lock(s_->mu);
        file = std::move(s_->file);
    }
    close();
    return file;
}

int WritePipe::write(const void* data, std::size_t len) {
    if (!s_) return -EBADF;
    if (int e = error(); e < 0) return e;
    const char* p = static_cast<const char*>(data);
    while (len > 0) {
        if (!cur_) {
            std::lock_guard<std::mutex> lock(s_->mu);
            if (!s_->spare.empty()) {
                cur_ = std::move(s_->spare.back());
                s_->spare.pop_back();
            }
        }
        if (!cur_) cur_ = std::make_unique_for_overwrite<char[]>(kBufferBytes);
        std::size_t n = std::min(len, kBufferBytes - cur_size_);
        std::memcpy(cur_.get() + cur_size_, p, n);
        cur_size_ += n;
        p += n;
        len -= n;
        if (cur_size_ == kBufferBytes) send_current();
    }
    return 0;
}

void WritePipe::send_current() {
    if (!cur_ || cur_size_ == 0) return;
    {
        std::lock_guard<std::mutex> lock(s_->mu);
        s_->queued.push_back({std::move(cur_), cur_size_});
    }
    cur_size_ = 0;
    submit(s_);
}

bool WritePipe::backlogged() {
    if (!s_) return false;
    std::lock_guard<std::mutex> lock(s_->mu);
    bool full = s_->queued.size() >= kDepth && s_->error == 0 && !s_->dropped;
    if (full) s_->wants_wake = true;
    return full;
}

bool WritePipe::idle() {
    if (!s_) return true;
    send_current();
    std::lock_guard<std::mutex> lock(s_->mu);
    bool idle = s_->queued.empty() && !s_->in_hand;
    if (!idle) s_->wants_wake = true;
    return idle;
}

// The loop writes what is queued itself while the helper finishes the buffer it holds: no wait
// for a helper that may be busy with other jobs, or for the loop's own resubmission.
void WritePipe::wait_idle() {
    if (!s_) return;
    send_current();
    State& s = *s_;
    std::unique_lock<std::mutex> lock(s.mu);
    for (;;) {
        if (s.queued.empty() && !s.in_hand) return;
        if (s.in_hand) {
            s.cv.wait(lock);
            continue;
        }
        Buffer b = std::move(s.queued.front());
        s.queued.pop_front();
        s.in_hand = true;
        lock.unlock();
        int rc = write_buffer(s.file.get(), b.data.get(), b.size, s.offset, s.sha,
                              s.with_extra ? &s.extra : nullptr);
        lock.lock();
        s.in_hand = false;
        if (rc < 0) {
            s.error = rc;
            s.queued.clear();
        }
        if (s.spare.size() <= kDepth) s.spare.push_back(std::move(b.data));
    }
}

std::shared_ptr<DiskWait> WritePipe::finish(bool fsync) {
    auto wait = std::make_shared<DiskWait>();
    if (!s_) {
        wait->done = true;
        wait->rc = -EBADF;
        return wait;
    }
    send_current();
    {
        std::lock_guard<std::mutex> lock(s_->mu);
        s_->sync_asked = fsync;
    }
    s_->finished = wait;
    if (s_->submitted) return wait;
    submit(s_);
    return wait;
}

int WritePipe::error() const {
    if (!s_) return 0;
    std::lock_guard<std::mutex> lock(s_->mu);
    return s_->error;
}

std::uint64_t WritePipe::offset() const {
    std::lock_guard<std::mutex> lock(s_->mu);
    return s_->offset;
}

Sha256 WritePipe::sha() const {
    std::lock_guard<std::mutex> lock(s_->mu);
    return s_->sha;
}

Sha256 WritePipe::extra() const {
    std::lock_guard<std::mutex> lock(s_->mu);
    return s_->extra;
}

void WritePipe::abandon(bool wait) {
    if (!s_) return;
    cur_.reset();
    cur_size_ = 0;
    std::unique_lock<std::mutex> lock(s_->mu);
    s_->dropped = true;
    s_->queued.clear();
    if (wait) s_->cv.wait(lock, [this] { return !s_->in_hand; });
}

void WritePipe::submit(const std::shared_ptr<State>& s) {
    if (s->submitted) return;
    s->submitted = true;
    auto job = std::make_unique<Helpers::Job>();
    job->work = [s] { run(*s); };
    job->done = [s] {
        s->submitted = false;
        bool more, end, wake;
        {
            std::lock_guard<std::mutex> lock(s->mu);
            bool stopped = s->error < 0 || s->dropped;
            more = !stopped && (!s->queued.empty() || (s->sync_asked && !s->synced));
            end = !more && !s->in_hand;
            wake = s->wants_wake && end;
            if (wake) s->wants_wake = false;
        }
        if (more) return submit(s);
        if (end && s->finished) {
            std::shared_ptr<DiskWait> w = std::move(s->finished);
            w->done = true;
            w->rc = s->error < 0 ? s->error : s->dropped ? -ECANCELED : 0;
            wake = true;
        }
        if (wake && s->runner.wake) s->runner.wake();
    };
    if (s->runner.helpers) {
        s->runner.helpers->submit(std::move(job));
    } else {
        job->work();
        job->done();
    }
}

void WritePipe::run(State& s) {
    for (int n = 0; n < kBuffersPerJob; ++n) {
        Buffer b;
        {
            std::lock_guard<std::mutex> lock(s.mu);
            // The loop writes the rest itself (wait_idle): one writer at a time, in order.
            if (s.error < 0 || s.dropped || s.in_hand) return;
            if (s.queued.empty()) {
                if (!s.sync_asked || s.synced) return;
                // The last buffer is written: the file's fsync, still on this helper.
                s.synced = true;
                s.in_hand = true;
            } else {
                b = std::move(s.queued.front());
                s.queued.pop_front();
                s.in_hand = true;
            }
        }
        int rc = 0;
        if (!b.data) {
            rc = ::fsync(s.file.get()) == 0 ? 0 : -errno;
        } else {
            rc = write_buffer(s.file.get(), b.data.get(), b.size, s.offset, s.sha,
                              s.with_extra ? &s.extra : nullptr);
            if (rc == 0) {
                if (s.writeback_every && s.offset - s.written_back >= s.writeback_every) {
                    // Starts writeback without waiting for it, so the final fsync only has the
                    // tail left; errors surface there.
                    ::sync_file_range(s.file.get(), off64_t(s.written_back),
                                      off64_t(s.offset - s.written_back), SYNC_FILE_RANGE_WRITE);
                    s.written_back = s.offset;
                }
            }
        }
        bool wake;
        {
            std::lock_guard<std::mutex> lock(s.mu);
            s.in_hand = false;
            if (rc < 0) {
                s.error = rc;
                s.queued.clear();
            }
            // Kept for the next buffers, as many as the pipe holds at most.
            if (b.data && s.spare.size() <= kDepth) s.spare.push_back(std::move(b.data));
            wake = s.wants_wake;
            s.wants_wake = false;
        }
        s.cv.notify_all();
        if (wake && s.runner.helpers) s.runner.helpers->nudge();
    }
}

}  // namespace duet
