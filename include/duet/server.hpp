#pragma once
// The server owns everything: the loop, listeners, connections, store, timers, metrics and the
// lifecycle state. Signals and file watches only record intents; run() acts on them between loop
// iterations, so stop and reload are ordinary code paths.
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "duet/auth_throttle.hpp"
#include "duet/buffer.hpp"
#include "duet/config.hpp"
#include "duet/conn.hpp"
#include "duet/fd.hpp"
#include "duet/handover.hpp"
#include "duet/lifecycle.hpp"
#include "duet/listeners.hpp"
#include "duet/loop.hpp"
#include "duet/metrics.hpp"
#include "duet/store.hpp"
#include "duet/timers.hpp"

namespace duet {

class Server;

class Listener : public Handler {
  public:
    Listener(Server& s, Port p) : srv_(s), port_(p) {}
    void on_event(std::uint32_t events) override;
    Port port() const { return port_; }
    Fd fd;
    bool registered = false;

  private:
    Server& srv_;
    Port port_;
};

enum class Intent : std::uint8_t { None, Stop, StopNow, Reload };

class Server {
  public:
    Server(Config cfg, std::vector<std::string> argv, std::string exe);
    // Sets up everything and prints the ready line. Returns an exit code != 0 on failure.
    // `handover` holds the connections a reload passed as records (read in main), if any.
    int start(ListenSockets sockets, std::vector<HandedConn> handed_conns,
              HandoverIn handover = {});
    // Runs until stopped. Returns the process exit code (or execs on reload).
    int run();

    // Called by handlers.
    void accept_from(Listener& l);
    // `handed` is set for a connection carried over a reload ('h', 'f' or 'a'), else 0.
    void add_conn(int fd, Port port, char handed = 0);
    void conn_closed(Conn* c);
    void on_signal(int signo);
    void on_watch_event();
    void on_check_done(bool ok, const std::string& output);

    std::int64_t now_ms() const { return now_ms_; }
    const std::string& date_header() const { return date_header_; }  // "Date: ...\r\n"
    // The JSON of GET /, fixed for the life of this image.
    const std::string& root_body() const { return root_body_; }
    bool draining() const { return draining_ || reload_pending_; }
    bool draining_conns() const { return draining_; }
    // Keeps an idle connection's socket for the next image (reload).
    void hand_over(Conn* c);

    const Config& cfg;  // refers to config_
    Loop loop;
    Store store;
    BufferPool pool;
    Metrics metrics;
    TimerList header_timers;
    TimerList idle_timers;
    TimerList linger_timers;
    TimerList throttle_timers;  // connections parked by the guessing throttle, by release time
    AuthThrottle throttle;
    std::uint64_t generation = 0;
    std::uint64_t reloads = 0;
    double started_at = 0;  // CLOCK_REALTIME seconds of the first start of this PID

    void log(const char* fmt, ...) __attribute__((format(printf, 2, 3)));
    void access_log(const std::string& line);

  private:
    void tick();
    void expire_timers();
    int next_timeout_ms() const;
    void act_on_intents();
    void begin_drain(bool for_reload);
    void check_drain_done();
    void pause_accepting();
    void resume_accepting();
    void finish_reload();
    // Reload without waiting (server_reload.cpp): every connection goes to the new image as a
    // record, whatever it is doing. false when it could not start (then the caller drains).
    bool hand_over_all();
    // Next image: takes every record back; one that cannot be read costs its connection only.
    void resume_handed(HandoverIn& in);
    // Links a connection (accepted, or carried over a reload) into the list, loop and timers.
    void link_conn(Conn* c, int fd);
    void reap_dead();
    void print_ready();

    Config config_;
    std::vector<std::string> argv_;
    std::string exe_;
    Listener http_listener_;
    Listener files_listener_;
    Lifecycle life_;
    Conn* conns_ = nullptr;
    std::vector<Conn*> dead_;
    std::vector<HandedConn> handover_;
    std::size_t open_conns_ = 0;
    std::int64_t now_ms_ = 0;
    std::int64_t date_second_ = -1;
    std::string date_header_;
    std::string root_body_;
    std::int64_t accept_retry_at_ = -1;  // after EMFILE: when to try accepting again
    bool accept_paused_ = false;
    Intent intent_ = Intent::None;
    bool draining_ = false;
    bool reloading_ = false;
    bool reload_pending_ = false;  // pre-flight check running
    std::int64_t drain_started_ = 0;
    std::int64_t drain_deadline_ = 0;
    std::size_t drained_busy_ = 0, closed_idle_ = 0;
    int exit_code_ = -1;
};

}  // namespace duet
