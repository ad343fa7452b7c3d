#pragma once
// The server owns everything: the loop, listeners, connections, store, timers, metrics and the
// lifecycle state. Signals and file watches only record intents; run() acts on them between loop
// iterations, so stop and reload are ordinary code paths.
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "duet/core/config.hpp"
#include "duet/core/fd.hpp"
#include "duet/core/handover.hpp"
#include "duet/event/log_sink.hpp"
#include "duet/net/conn.hpp"
#include "duet/net/listeners.hpp"
#include "duet/net/rest_writer.hpp"
#include "duet/server/lifecycle.hpp"
#include "duet/session/session_host.hpp"

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

// The server is the one SessionHost (and so ConnHost) of every connection: connections see it
// only through those views.
class Server final : public SessionHost, public LifecycleEvents {
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
    void conn_closed(Conn* c) override;
    void on_signal(int signo) override;
    void on_watch_event() override;
    void on_check_done(bool ok, const std::string& output) override;

    // Stopping or reloading (its check, streams written ahead): /healthz answers 503.
    bool draining() const override { return draining_ || reload_pending_ || handing_over_; }
    bool draining_conns() const override { return draining_; }
    bool stopping() const override { return draining_ && !reloading_; }
    // A reload's check passed and the rests of streamed listings are being written ahead (see
    // prepare_slice): a new stream waits for the next image.
    bool preparing_hand_over() const { return handing_over_ && !draining_; }

    // Connections parked (Conn::parked), run again after the current event once woken.
    void park(Conn* c) override;
    void wake_parked() override { wake_due_ = true; }
    // Cold downloads: a helper reads into the page cache (and asks for the next windows).
    void read_ahead(Conn* c, int fd, off_t off, std::size_t len) override;
    // Keeps an idle connection's socket for the next image (reload).
    void hand_over(Conn* c) override;

    InotifyFds inherited_inotify;  // from the previous image, taken over by start()

    void vlog(const char* fmt, va_list ap) override;
    void access_log(const std::string& line) override;
    std::uint64_t log_lines_dropped() const override {
        return out_log_.dropped_total() + err_log_.dropped_total();
    }

  protected:
    bool holding_new_streams() const override { return preparing_hand_over(); }

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
    InotifyFds passed_inotify() const { return {index.inotify_fd(), life_.inotify_fd()}; }
    // Reload without waiting (server_reload.cpp): every connection goes to the new image as a
    // record, whatever it is doing. false when it could not start (then the caller drains).
    bool hand_over_all();
    // Before it (server_reload.cpp): every connection streaming a big listing has the rest
    // written into a memory file, a turn at a time round-robin within each step's slice, and
    // then sends that file (RestWriter). The hand-over waits until none is left, and for
    // uploads between their fsyncs and their answer; a stop meanwhile wins.
    void start_preparing();
    void prepare_slice(std::int64_t budget_ns);
    void continue_hand_over();
    // The time of the step under way goes into the loop-stall metrics, which are handed to the
    // next image in its environment (the step that execs is never seen otherwise).
    void pass_stalls();
    // Next image: takes every record back; one that cannot be read costs its connection only.
    void resume_handed(HandoverIn& in);
    // Links a connection (accepted, or carried over a reload) into the list, loop and timers.
    void link_conn(Conn* c, int fd);
    void reap_dead();
    void print_ready();
    void wake_now();
    bool any_publishing() const;
    void record_step(std::int64_t ns);

    Config config_;
    std::vector<std::string> argv_;
    std::string exe_;
    LogSink out_log_{1};  // access log
    LogSink err_log_{2};  // everything else
    Listener http_listener_;
    Listener files_listener_;
    Lifecycle life_;
    Conn* conns_ = nullptr;
    std::vector<Conn*> dead_;
    std::vector<Conn*> parked_;
    std::unordered_set<Conn*> reading_ahead_;
    bool wake_due_ = false;
    // A reload's check passed: the hand-over waits for streams written ahead and for uploads
    // between fsync and answer (continue_hand_over).
    bool handing_over_ = false;
    struct Preparing {
        Conn* conn;
        std::unique_ptr<RestWriter> rest;
    };
    std::vector<Preparing> preparing_;
    std::size_t prepare_next_ = 0;      // round-robin
    std::int64_t prepare_pace_ms_ = 0;  // test hook: one turn per stream every so often
    std::int64_t prepare_due_ms_ = 0;
    std::int64_t step_started_ns_ = -1;  // when the current loop step began (epoll_wait returned)
    std::vector<HandedConn> handover_;
    std::size_t open_conns_ = 0;
    std::int64_t date_second_ = -1;
    std::int64_t partial_sweep_at_ = 0;  // next bounded sweep of expired partial uploads
    std::int64_t rescan_at_ = 0;         // next round of folders over the inotify watch limit
    std::int64_t keepalive_at_ = 0;      // next comment line on every event stream
    static constexpr std::int64_t kRescanMs = 2000;
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
