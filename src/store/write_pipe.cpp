// An upload's bytes written and hashed on helpers, in order. See write_pipe.hpp.
//
// Two stages, each a chain of helper jobs: the writer writes buffer i at its offset while the
// hasher hashes buffer i-1, which is already in the file (so after a write error the hash still
// covers exactly the bytes written). A stage is run by one thread at a time: its job, or the loop
// in wait_idle. A job ends when its stage has nothing to do, after kBuffersPerJob buffers, or (the
// writer) when it has made work for a hasher that is not running; the loop's done callback then
// starts whatever stage has work (pump).
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
    std::uint64_t written_back = 0;  // the writer's

    std::mutex mu;
    std::condition_variable cv;
    // Under mu. queued[0, written) are in the file and wait for the hasher; the rest wait for
    // the writer, which holds queued[written] while `writing`; the hasher holds queued[0] while
    // `hashing`. Buffers are retired from the front once hashed.
    std::deque<Buffer> queued;
    std::size_t written = 0;
    std::vector<std::unique_ptr<char[]>> spare;
    bool writing = false, hashing = false;
    bool writer_job = false, hasher_job = false;  // submitted and not yet ended
    bool wants_wake = false;                      // the loop waits for room or for the end
    bool dropped = false;
    bool sync_asked = false, synced = false;
    int error = 0, sync_rc = 0;
    std::uint64_t next_at = 0;  // where the next buffer queued goes in the file

    // The hasher's (or the loop's once idle): the hash states and the bytes they cover.
    std::uint64_t offset = 0;
    Sha256 sha, extra;
    bool with_extra = false;

    // Loop only.
    std::shared_ptr<DiskWait> finished;
    std::function<void()> then;  // runs once `finished` is done

    bool idle() const { return queued.empty() && !writing && !hashing; }
    bool can_write() const { return !writing && error == 0 && !dropped && written < queued.size(); }
    bool can_sync() const {
        return !writing && error == 0 && !dropped && written == queued.size() && sync_asked &&
               !synced;
    }
    bool can_hash() const { return !hashing && !dropped && written > 0; }
};

namespace {

// Writes len bytes at `at`; `done` counts what was written, all of it unless an error is returned.
int write_at(int fd, const char* p, std::size_t len, std::uint64_t at, std::size_t& done) {
    done = 0;
    while (done < len) {
        ssize_t n = ::pwrite(fd, p + done, len - done, off_t(at + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return n < 0 ? -errno : -EIO;
        done += std::size_t(n);
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
    s->offset = s->written_back = s->next_at = offset;
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
        if (s_->error < 0 || s_->dropped) {  // never to be written: the pipe takes no more
            cur_size_ = 0;
            return;
        }
        s_->queued.push_back({std::move(cur_), cur_size_, s_->next_at});
        s_->next_at += cur_size_;
    }
    cur_size_ = 0;
    pump(s_);
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
    bool idle = s_->idle();
    if (!idle) s_->wants_wake = true;
    return idle;
}

// The loop runs whichever stage is free itself while the helpers finish what they hold: no wait
// for a helper that may be busy with other jobs, or for the loop's own resubmission.
void WritePipe::wait_idle() {
    if (!s_) return;
    send_current();
    State& s = *s_;
    std::unique_lock<std::mutex> lock(s.mu);
    for (;;) {
        if (s.idle() || (s.dropped && !s.writing && !s.hashing)) return;
        if (s.can_write()) {
            write_step(s, lock);
        } else if (s.can_hash()) {
            hash_step(s, lock);
        } else {
            s.cv.wait(lock);
        }
    }
}

std::shared_ptr<DiskWait> WritePipe::finish(bool fsync, std::function<void()> then) {
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
    s_->then = std::move(then);
    pump(s_);
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
    // Buffers a stage holds stay until the state goes (its jobs hold it too).
    if (wait) s_->cv.wait(lock, [this] { return !s_->writing && !s_->hashing; });
}

// With s.mu held and can_write(): writes queued[written] (or fsyncs), the lock released meanwhile.
void WritePipe::write_step(State& s, std::unique_lock<std::mutex>& lock) {
    s.writing = true;
    if (s.written == s.queued.size()) {  // can_sync: the last buffer is in the file
        s.synced = true;
        lock.unlock();
        int rc = ::fsync(s.file.get()) == 0 ? 0 : -errno;
        lock.lock();
        s.sync_rc = rc;
        s.writing = false;
        s.cv.notify_all();
        return;
    }
    Buffer& b = s.queued[s.written];  // stays put: only the front is retired, and it is written
    const char* data = b.data.get();
    std::size_t size = b.size;
    std::uint64_t at = b.at;
    int fd = s.file.get();
    lock.unlock();
    std::size_t done = 0;
    int rc = write_at(fd, data, size, at, done);
    if (rc == 0 && s.writeback_every && at + size - s.written_back >= s.writeback_every) {
        // Starts writeback without waiting for it, so the final fsync only has the tail left;
        // errors surface there.
        ::sync_file_range(fd, off64_t(s.written_back), off64_t(at + size - s.written_back),
                          SYNC_FILE_RANGE_WRITE);
        s.written_back = at + size;
    }
    lock.lock();
    if (rc < 0) {
        // What made it is hashed like any buffer; nothing after it is written.
        s.queued[s.written].size = done;
        s.queued.erase(s.queued.begin() + std::ptrdiff_t(s.written) + 1, s.queued.end());
        s.error = rc;
    }
    ++s.written;
    s.writing = false;
    s.cv.notify_all();
}

// With s.mu held and can_hash(): hashes queued[0] and retires it, the lock released meanwhile.
void WritePipe::hash_step(State& s, std::unique_lock<std::mutex>& lock) {
    s.hashing = true;
    const char* data = s.queued.front().data.get();
    std::size_t size = s.queued.front().size;
    lock.unlock();
    s.sha.update(data, size);
    if (s.with_extra) s.extra.update(data, size);
    lock.lock();
    s.offset += size;
    // Kept for the next buffers, as many as the pipe holds at most.
    if (s.spare.size() <= kDepth) s.spare.push_back(std::move(s.queued.front().data));
    s.queued.pop_front();
    --s.written;
    s.hashing = false;
    s.cv.notify_all();
}

// On the loop: starts a job for each stage that has work and none running; ends the wait of
// finish() once everything is done.
void WritePipe::pump(const std::shared_ptr<State>& s) {
    bool writer = false, hasher = false, end = false, wake = false;
    int rc = 0;
    {
        std::lock_guard<std::mutex> lock(s->mu);
        if (!s->writer_job && (s->can_write() || s->can_sync())) writer = s->writer_job = true;
        if (!s->hasher_job && s->can_hash()) hasher = s->hasher_job = true;
        bool stopped = s->error < 0 || s->dropped;
        end = !s->writer_job && !s->hasher_job && !s->writing && !s->hashing &&
              (s->queued.empty() || s->dropped) && (!s->sync_asked || s->synced || stopped);
        if (end && s->wants_wake) {
            s->wants_wake = false;
            wake = true;
        }
        rc = s->error < 0 ? s->error : s->dropped ? -ECANCELED : s->sync_rc;
    }
    if (writer) start_job(s, true);
    if (hasher) start_job(s, false);
    if (end && s->finished) {
        std::shared_ptr<DiskWait> w = std::move(s->finished);
        w->done = true;
        w->rc = rc;
        wake = true;
        if (std::function<void()> then = std::move(s->then)) then();
    }
    if (wake && s->runner.wake) s->runner.wake();
}

void WritePipe::start_job(const std::shared_ptr<State>& s, bool writer) {
    auto job = std::make_unique<Helpers::Job>();
    job->work = [s, writer] { run(*s, writer); };
    job->done = [s] { pump(s); };
    if (s->runner.helpers) {
        s->runner.helpers->submit(std::move(job));
    } else {
        job->work();
        job->done();
    }
}

void WritePipe::run(State& s, bool writer) {
    std::unique_lock<std::mutex> lock(s.mu);
    for (int n = 0; n < kBuffersPerJob; ++n) {
        if (writer) {
            if (!s.can_write() && !s.can_sync()) break;
            write_step(s, lock);
            // Work for a hasher that is not running: end, so the loop starts one.
            if (!s.hasher_job && s.can_hash()) break;
        } else {
            if (!s.can_hash()) break;
            hash_step(s, lock);
            // A buffer retired: room again (or the end) for a parked reader. Only the hasher
            // frees one, so only it wakes the loop.
            if (s.wants_wake && s.runner.helpers) {
                s.wants_wake = false;
                lock.unlock();
                s.runner.helpers->nudge();
                lock.lock();
            }
        }
    }
    (writer ? s.writer_job : s.hasher_job) = false;
}

}  // namespace duet
