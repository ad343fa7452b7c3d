#pragma once
// stdout and stderr written without ever blocking the loop (README "Logs never block"). Each
// stream gets its own bounded buffer (1 MiB); a reader that stalls costs whole dropped lines,
// counted, and one "duet: N log lines dropped" line once it catches up — never service.
//
// The process's fds 1 and 2 are left exactly as inherited. A pipe or terminal is reopened through
// /proc/self/fd/N as a new open file description with O_NONBLOCK, so the flag never leaks to the
// shell or the other processes sharing the pipe; a socket (journald) is written with
// MSG_DONTWAIT; a regular file is written as is (its writes go to the page cache). Only when the
// reopen fails is O_NONBLOCK set on the shared description, and then it is cleared again before
// an exec and at exit.
#include <cstdint>
#include <string>
#include <string_view>

#include "duet/core/fd.hpp"
#include "duet/event/loop.hpp"

namespace duet {

class LogSink : public Handler {
  public:
    static constexpr std::size_t kLimit = 1 << 20;

    // `fd` is 1 or 2. Before attach() lines are written blocking (start-up, fatal errors).
    explicit LogSink(int fd) : target_(fd) {}
    ~LogSink() override;
    // Switches to non-blocking output, registering with `loop` only while output waits.
    void attach(Loop& loop);
    // Puts back blocking mode on a shared description and writes what it can (exec, exit).
    void detach();

    // One whole line, without its LF.
    void line(std::string_view text);
    std::uint64_t dropped_total() const { return dropped_total_; }
    std::size_t pending() const { return buf_.size() - sent_; }

    void on_event(std::uint32_t events) override;

  private:
    void flush();
    ssize_t raw_write(const char* p, std::size_t n);
    void want_writable(bool on);

    int target_;
    Fd own_;  // our own open file description of the same pipe/tty, when reopened
    int out_ = -1;
    bool is_socket_ = false;
    bool shared_nonblock_ = false;  // we set O_NONBLOCK on the inherited description
    bool broken_ = false;           // the reader is gone (EPIPE): lines are dropped silently
    Loop* loop_ = nullptr;
    bool registered_ = false;
    std::string buf_;
    std::size_t sent_ = 0;
    std::uint64_t dropped_total_ = 0;
    std::uint64_t dropped_unreported_ = 0;
};

}  // namespace duet
