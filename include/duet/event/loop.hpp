#pragma once
// The event loop: one epoll instance, and every fd's owner is a Handler with one on_event method.
// Listeners, connections, the signalfd and the inotify fd all plug in the same way.
#include <sys/epoll.h>

#include <cstdint>

#include "duet/core/fd.hpp"

namespace duet {

class Handler {
  public:
    virtual ~Handler() = default;
    virtual void on_event(std::uint32_t events) = 0;
};

class Loop {
  public:
    // 0 or -errno.
    int init();
    int add(int fd, std::uint32_t events, Handler* h);
    int modify(int fd, std::uint32_t events, Handler* h);
    int remove(int fd);
    // Waits at most timeout_ms for ready fds. Returns how many, or -errno. The caller reads its
    // clock after this and before dispatch(), so handlers never see a time from before the wait.
    int wait(int timeout_ms);
    // Calls on_event for each fd the last wait() returned.
    void dispatch();

  private:
    Fd ep_;
    epoll_event events_[256];
    int ready_ = 0;
};

}  // namespace duet
