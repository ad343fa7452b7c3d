#pragma once
// What a connection sees of the server that owns it, and nothing more: the loop, the buffer pool,
// its timer lists, the clock read once per loop step, the metrics, the token-guessing throttle,
// the step's output budget, where to log, and a few calls back (park, wake, read ahead, closed,
// hand over). The server is one; a connection never sees the rest of it.
#include <sys/types.h>

#include <cstddef>
#include <cstdint>

#include "duet/core/buffer.hpp"
#include "duet/core/logger.hpp"
#include "duet/core/metrics.hpp"
#include "duet/event/loop.hpp"
#include "duet/event/timers.hpp"
#include "duet/net/auth_throttle.hpp"

namespace duet {

class Conn;

class ConnHost : public Logger {
  public:
    Loop loop;
    BufferPool pool;
    Metrics metrics;
    TimerList header_timers;
    TimerList idle_timers;
    TimerList linger_timers;
    TimerList throttle_timers;  // connections parked by the guessing throttle, by release time
    AuthThrottle throttle;

    // CLOCK_MONOTONIC in ms, read once per loop step and shared by every timeout decision in it.
    std::int64_t now_ms() const { return now_ms_; }

    // Bytes of long bodies and files all connections together may write in one loop step, so a
    // step's copying stays bounded however many clients read at once; refilled every step.
    static constexpr std::size_t kOutputPerStep = 4u << 20;
    std::size_t output_budget() const { return out_budget_; }
    void spend_output(std::size_t n) { out_budget_ = n < out_budget_ ? out_budget_ - n : 0; }

    // Parks `c` until wake_parked(): its request waits for something (the store index, a helper,
    // the throttle) and is simply handled again from the start when woken.
    virtual void park(Conn* c) = 0;
    // Asks for every parked connection to run again after the current event.
    virtual void wake_parked() = 0;
    // Cold downloads: a helper reads [off, off+len) of `fd` into the page cache, then `c` is told
    // (Conn::disk_ready) if still open, and woken.
    virtual void read_ahead(Conn* c, int fd, off_t off, std::size_t len) = 0;
    // `c` closed: unlinked, its waits dropped, freed after the current batch of events.
    virtual void conn_closed(Conn* c) = 0;
    // Keeps an idle connection's socket for the next image (reload).
    virtual void hand_over(Conn* c) = 0;
    // A stop or reload drains the connections: they finish what is in flight, then close.
    virtual bool draining_conns() const = 0;

  protected:
    ConnHost() = default;
    ~ConnHost() = default;
    std::int64_t now_ms_ = 0;
    std::size_t out_budget_ = kOutputPerStep;
};

}  // namespace duet
