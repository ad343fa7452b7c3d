#pragma once
// The bytes of one upload on their way into its file (README "Uploads never hold the loop"). The
// loop only copies what it receives into buffers of kBufferBytes; on helpers, each full one is
// written at its place in the file and then fed to SHA-256, in order, the two stages side by side
// (one buffer written while the one before is hashed). Once kDepth buffers wait, the caller
// stops reading that socket (backlogged()) until the helper has caught up, so the memory an upload
// holds stays bounded whatever the client's speed or the disk's. Before anything reads the hash or
// the file (publish, checkpoint, hand-over), the pipe is drained: finish() without waiting, or
// wait_idle() where the wait is bounded by those few buffers.
//
// Only the hashing stage touches the hash states and the offset they cover; the loop reads them
// once idle() says nothing is queued or in hand. Without helpers (unit tests) every buffer is
// written and hashed in place.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "duet/core/fd.hpp"
#include "duet/core/sha256.hpp"
#include "duet/event/helpers.hpp"

namespace duet {

class WritePipe {
  public:
    static constexpr std::size_t kBufferBytes = 256 * 1024;
    static constexpr std::size_t kDepth = 4;  // full buffers waiting before reading pauses
    // Buffers one helper job writes before it lets other jobs have the helper.
    static constexpr int kBuffersPerJob = 16;

    // Where the pipe's jobs run, and what wakes the connections that wait for a pipe.
    struct Runner {
        Helpers* helpers = nullptr;
        std::function<void()> wake;
    };

    bool active() const { return s_ != nullptr; }
    // Starts a pipe into `file` (the pipe holds it until take_file) at `offset`, whose hash
    // state there is `sha`; with `extra`, a second hash (a tus append's own checksum) is fed
    // too. Writeback of what was written is started every `writeback_every` bytes.
    void open(const Runner& runner, Fd file, std::uint64_t offset, const Sha256& sha,
              const Sha256* extra, std::uint64_t writeback_every);
    // Takes all of `data` (copied). The first write error of an earlier buffer, if any.
    int write(const void* data, std::size_t len);
    // kDepth buffers wait: stop reading; the runner's wake comes when one is written.
    bool backlogged();
    // Everything taken is written and hashed (a partly filled buffer is sent first). When not,
    // the runner's wake comes once it is.
    bool idle();
    // Blocks until idle (bounded by kDepth buffers): for paths that cannot wait in steps.
    void wait_idle();
    // Sends what is left and, on the helper after the last buffer, fsyncs the file when `fsync`:
    // the wait is done (rc 0 or the first error) once all of it is, then `then` and the runner's
    // wake run, on the loop.
    std::shared_ptr<DiskWait> finish(bool fsync, std::function<void()> then = {});
    // Valid once idle.
    int error() const;
    std::uint64_t offset() const;
    Sha256 sha() const;
    Sha256 extra() const;
    // Drops what is not written yet; with `wait`, returns only once no helper writes any more.
    void abandon(bool wait);
    // Once idle: the file back, and the pipe closed (the next write needs open() again).
    Fd take_file();
    // Forgets the pipe (after abandon): its file closes once no helper holds it.
    void close() { s_.reset(), cur_.reset(), cur_size_ = 0; }

  private:
    struct Buffer {
        std::unique_ptr<char[]> data;
        std::size_t size = 0;
        std::uint64_t at = 0;  // its place in the file
    };
    struct State;
    static void write_step(State& s, std::unique_lock<std::mutex>& lock);
    static void hash_step(State& s, std::unique_lock<std::mutex>& lock);
    static void pump(const std::shared_ptr<State>& s);
    static void start_job(const std::shared_ptr<State>& s, bool writer);
    static void run(State& s, bool writer);  // on a helper
    void send_current();

    std::shared_ptr<State> s_;
    std::unique_ptr<char[]> cur_;  // the buffer being filled, loop side
    std::size_t cur_size_ = 0;
};

}  // namespace duet
