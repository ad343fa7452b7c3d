#pragma once
// Lifecycle plumbing, all as handlers on the one loop: a signalfd (stop, reload, child exit), an
// inotify fd (reload on change, debounced), the pre-flight `EXE --check` child, service-manager
// notifications, and the execve that swaps the image in place.
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "duet/core/fd.hpp"
#include "duet/event/loop.hpp"
#include "duet/net/listeners.hpp"

namespace duet {

// What the lifecycle tells its owner (the server), as intents acted on between loop steps.
class LifecycleEvents {
  public:
    virtual void on_signal(int signo) = 0;  // SIGINT, SIGTERM, SIGQUIT, SIGHUP
    virtual void on_watch_event() = 0;      // a watched file changed (--reload)
    virtual void on_check_done(bool ok, const std::string& output) = 0;  // `--check` finished

  protected:
    ~LifecycleEvents() = default;
};

// The signals we handle through the signalfd. Blocked before anything else starts.
void block_lifecycle_signals();

// sd_notify: one datagram to $NOTIFY_SOCKET (path or @abstract). No-op without it.
void notify_service_manager(const std::string& message);

// Inotify fds that cross a reload. Closing an inotify fd that holds watches makes the closing
// process wait while the kernel retires them (an SRCU grace period: 13 ms of a 14 ms stop on the
// project VM), and execve closes close-on-exec fds before the next image runs. So a reload hands
// both inotify fds (the store index's and --reload's) to the next image in
// DUET_INOTIFY_FDS=STORE,RELOAD (-1 for none); adding a watch on the same path there gives back
// the same watch, and the store's events queued during the exec are not lost.
struct InotifyFds {
    int store = -1;
    int reload = -1;
};
// Reads and unsets DUET_INOTIFY_FDS; keeps only fds that are inotify instances, close-on-exec
// again.
InotifyFds take_inherited_inotify();
// Closes every open fd above 2 but those in `keep` (a reloaded image: whatever the old one passed
// that nobody claimed). Returns how many of them were sockets.
std::size_t close_unclaimed_fds(const std::vector<int>& keep);

class Lifecycle {
  public:
    // Arms the signalfd and, with --reload, the watches (on `inherited`, the previous image's
    // inotify fd, when there is one). 0 or an error line.
    bool init(LifecycleEvents& events, Loop& loop, const std::string& exe,
              const std::vector<std::string>& watch, bool reload, int inherited,
              std::string& error);
    int inotify_fd() const { return inotify_fd_.get(); }

    // Debounce: a change arms a deadline 150 ms ahead; every further change pushes it back.
    void change_seen(std::int64_t now_ms) { reload_due_ms_ = now_ms + 150; }
    bool reload_due(std::int64_t now_ms) const {
        return reload_due_ms_ >= 0 && now_ms >= reload_due_ms_;
    }
    std::int64_t reload_due_ms() const { return reload_due_ms_; }
    void clear_reload_due() { reload_due_ms_ = -1; }

    // Starts `exe --check ARGS...`; its result reaches LifecycleEvents::on_check_done.
    bool start_check(const std::string& exe, const std::vector<std::string>& argv,
                     std::int64_t now_ms);
    bool check_running() const { return check_pid_ > 0; }
    void poll_check(std::int64_t now_ms);  // reaps the child; kills it past its time limit
    std::int64_t check_deadline() const { return check_pid_ > 0 ? check_deadline_ms_ : -1; }

    void on_signal_readable();
    void on_watch_readable();

  private:
    struct SignalHandler : Handler {
        Lifecycle* life = nullptr;
        void on_event(std::uint32_t) override { life->on_signal_readable(); }
    };
    struct WatchHandler : Handler {
        Lifecycle* life = nullptr;
        void on_event(std::uint32_t) override { life->on_watch_readable(); }
    };
    struct Watch {
        int wd;
        std::string name;  // file watched through its directory; empty: the whole directory
    };

    void add_watch(const std::string& path, std::string& error);
    void finish_check(int status);

    LifecycleEvents* events_ = nullptr;
    Fd signal_fd_;
    Fd inotify_fd_;
    SignalHandler on_signal_;
    WatchHandler on_watch_;
    std::vector<Watch> watches_;
    std::int64_t reload_due_ms_ = -1;
    pid_t check_pid_ = -1;
    Fd check_output_;
    std::string check_text_;
    std::int64_t check_deadline_ms_ = 0;
};

// Replaces this process image with `exe`, passing the listening sockets as fds 3 and 4 (systemd
// convention), and either the hand-over memfd (DUET_HANDOVER_FD, every connection as a record)
// or, after a fall-back drain, idle connections by number (DUET_CONN_FDS), and the inotify fds.
// Returns only on failure, with errno set.
void reexec(const std::string& exe, const std::vector<std::string>& argv, int http_fd, int files_fd,
            const std::vector<HandedConn>& conns, int handover_fd, InotifyFds inotify,
            std::uint64_t generation, std::uint64_t reloads, double started_at);

}  // namespace duet
