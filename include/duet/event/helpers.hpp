#pragma once
// A small pool of helper threads for calls that wait for a disk (README "Disk I/O off the
// loop"): hashing a file's bytes, reading a directory, fsync. libuv's and nginx's `aio threads`
// model. A helper runs only the work function, which touches nothing but the file-system and the
// job's own fields; the loop hears of each finished job through an eventfd it watches and runs the
// job's done function itself, so the loop stays the only thread that touches sockets, connection
// state and the store index.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "duet/core/fd.hpp"
#include "duet/event/loop.hpp"

namespace duet {

// A disk wait run by a helper for a connection: done and its result, set on the loop.
struct DiskWait {
    bool done = false;
    int rc = 0;
};

class Helpers : public Handler {
  public:
    struct Job {
        std::function<void()> work;  // on a helper thread
        std::function<void()> done;  // back on the loop
        std::uint64_t key = 0;       // lets the owner move a queued job to the front
        // Nobody waits for it (hashing a file changed from outside): run by one background
        // helper at the lowest priority, so it takes only CPU that work someone waits for
        // (a cold download's reads, an fsync) leaves over.
        bool background = false;
    };

    ~Helpers() override;
    // Starts `threads` helpers and registers the eventfd. 0 or -errno.
    int start(Loop& loop, int threads);
    // Queues a job; `urgent` puts it first (someone is waiting for it).
    void submit(std::unique_ptr<Job> job, bool urgent = false);
    // Moves the queued job with this key to the front; false if it is running or done.
    bool hurry(std::uint64_t key);
    // Set when the process is about to exit: long work functions poll it and give up early.
    bool stopping() const { return stop_.load(std::memory_order_relaxed); }
    const std::atomic<bool>& stop_flag() const { return stop_; }
    // fsync(fd) on a helper, through a duplicate (the caller may close fd meanwhile); the result
    // lands in the returned DiskWait, then `then` runs on the loop.
    std::shared_ptr<DiskWait> fsync_later(int fd, std::function<void()> then);
    // Stops and joins the helpers (fast: long jobs check stop_flag between slices).
    void shutdown();
    std::size_t in_flight() const { return in_flight_; }
    // From any thread: runs the nudge handler on the loop soon (a helper made progress that a
    // parked connection waits for, in the middle of a longer job).
    void nudge();
    void set_on_nudge(std::function<void()> f) { on_nudge_ = std::move(f); }

    void on_event(std::uint32_t events) override;

  private:
    void run();
    void run_background();
    // A helper's life: take jobs from `queue` (woken by `cv`) at this nice value until stop_.
    void serve(std::deque<std::unique_ptr<Job>>& queue, std::condition_variable& cv, int nice);
    void start_thread(void (Helpers::*body)());

    Loop* loop_ = nullptr;
    Fd event_;
    std::vector<std::thread> threads_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::unique_ptr<Job>> queue_;
    std::deque<std::unique_ptr<Job>> background_;  // run_background's; its thread starts lazily
    std::condition_variable background_cv_;
    bool background_started_ = false;
    std::vector<std::unique_ptr<Job>> finished_;
    std::atomic<bool> stop_{false};
    std::atomic<bool> nudged_{false};
    std::function<void()> on_nudge_;
    std::size_t in_flight_ = 0;  // loop side: submitted and not yet done
};

}  // namespace duet
