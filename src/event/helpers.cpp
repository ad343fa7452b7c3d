// The helper-thread pool. See helpers.hpp.
#include "duet/event/helpers.hpp"

#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace duet {
namespace {
constexpr std::size_t kDonePerEvent = 64;
}  // namespace

Helpers::~Helpers() {
    shutdown();
}

int Helpers::start(Loop& loop, int threads) {
    loop_ = &loop;
    event_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!event_) return -errno;
    if (int rc = loop.add(event_.get(), EPOLLIN, this); rc < 0) return rc;
    // One malloc arena for all threads: per-thread arenas would cost resident memory for the
    // few small allocations helpers make.
    mallopt(M_ARENA_MAX, 1);
    for (int i = 0; i < threads; ++i) start_thread(&Helpers::run);
    return 0;
}

void Helpers::start_thread(void (Helpers::*body)()) {
    // Helpers never take a signal: every signal stays for the loop's signalfd.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    threads_.emplace_back([this, body] { (this->*body)(); });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

void Helpers::submit(std::unique_ptr<Job> job, bool urgent) {
    ++in_flight_;
    if (threads_.empty()) {  // not started (tests, --check): do it in place
        job->work();
        --in_flight_;
        job->done();
        return;
    }
    if (job->background && !urgent) {
        // Started on first use: an idle duet with nothing to hash has no such thread.
        if (!background_started_) {
            background_started_ = true;
            start_thread(&Helpers::run_background);
        }
        {
            std::lock_guard<std::mutex> lock(mu_);
            background_.push_back(std::move(job));
        }
        background_cv_.notify_one();
        return;
    }
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (urgent)
            queue_.push_front(std::move(job));
        else
            queue_.push_back(std::move(job));
    }
    cv_.notify_one();
}

bool Helpers::hurry(std::uint64_t key) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = queue_.begin(); it != queue_.end(); ++it) {
        if ((*it)->key != key) continue;
        if (it != queue_.begin()) {
            std::unique_ptr<Job> j = std::move(*it);
            queue_.erase(it);
            queue_.push_front(std::move(j));
        }
        return true;
    }
    return false;
}

void Helpers::run() {
    // Below the loop in the scheduler's eyes: on a busy machine a long hash must take the CPU
    // left over, never the loop's (per-thread nice value; SCHED_BATCH marks it as throughput work).
    serve(queue_, cv_, 10);
}

void Helpers::run_background() {
    // Nice 19: against the loop (nice 0) and the other helpers (nice 10) it gets about 1/70 and
    // 1/8 of a contended CPU. Not SCHED_IDLE: a thread may not leave that without CAP_SYS_NICE,
    // and a job someone waits for is submitted to the other helpers anyway.
    serve(background_, background_cv_, 19);
}

void Helpers::serve(std::deque<std::unique_ptr<Job>>& queue, std::condition_variable& cv,
                    int nice) {
    // The raw call (this thread only): glibc's wrapper sits on a page nothing else needs.
    sched_param sp{};
    ::syscall(SYS_sched_setscheduler, 0, SCHED_BATCH, &sp);
    setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), nice);
    for (;;) {
        std::unique_ptr<Job> job;
        {
            std::unique_lock<std::mutex> lock(mu_);
            cv.wait(lock, [this, &queue] { return stop_ || !queue.empty(); });
            if (stop_) return;
            job = std::move(queue.front());
            queue.pop_front();
        }
        job->work();
        {
            std::lock_guard<std::mutex> lock(mu_);
            finished_.push_back(std::move(job));
        }
        std::uint64_t one = 1;
        ssize_t n = ::write(event_.get(), &one, sizeof one);
        (void)n;  // the counter cannot overflow in practice; a failed write only delays a wake-up
    }
}

void Helpers::on_event(std::uint32_t) {
    std::uint64_t count;
    ssize_t n = ::read(event_.get(), &count, sizeof count);
    (void)n;
    // A bounded bite per loop step: thousands of small files hashed at once must not add up
    // to one long step. What is left re-arms the eventfd for the next round.
    std::vector<std::unique_ptr<Job>> done;
    bool more = false;
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (finished_.size() <= kDonePerEvent) {
            done.swap(finished_);
        } else {
            auto cut = finished_.begin() + kDonePerEvent;
            done.assign(std::make_move_iterator(finished_.begin()), std::make_move_iterator(cut));
            finished_.erase(finished_.begin(), cut);
            more = true;
        }
    }
    if (more) {
        std::uint64_t one = 1;
        n = ::write(event_.get(), &one, sizeof one);
    }
    for (auto& j : done) {
        --in_flight_;
        j->done();
    }
    if (nudged_.exchange(false, std::memory_order_acq_rel) && on_nudge_) on_nudge_();
}

void Helpers::nudge() {
    nudged_.store(true, std::memory_order_release);
    std::uint64_t one = 1;
    ssize_t n = ::write(event_.get(), &one, sizeof one);
    (void)n;
}

void Helpers::shutdown() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    background_cv_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
    queue_.clear();
    background_.clear();
    finished_.clear();
}

std::shared_ptr<DiskWait> Helpers::fsync_later(int fd, std::function<void()> then) {
    auto wait = std::make_shared<DiskWait>();
    auto file = std::make_shared<Fd>(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
    if (!*file) {
        wait->done = true;
        wait->rc = -errno;
        return wait;
    }
    auto rc = std::make_shared<int>(0);
    auto job = std::make_unique<Job>();
    job->work = [file, rc] { *rc = ::fsync(file->get()) == 0 ? 0 : -errno; };
    job->done = [wait, rc, then = std::move(then)] {
        wait->done = true;
        wait->rc = *rc;
        then();
    };
    submit(std::move(job));
    return wait;
}

}  // namespace duet
