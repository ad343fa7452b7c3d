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

#include "duet/net/auth_throttle.hpp"
#include "duet/core/buffer.hpp"
#include "duet/core/config.hpp"
#include "duet/net/conn.hpp"
#include "duet/core/fd.hpp"
#include "duet/core/handover.hpp"
#include "duet/event/helpers.hpp"
#include "duet/server/lifecycle.hpp"
#include "duet/net/listeners.hpp"
#include "duet/event/log_sink.hpp"
#include "duet/event/loop.hpp"
#include "duet/core/metrics.hpp"
#include "duet/store/partial_store.hpp"
#include "duet/net/rest_writer.hpp"
#include "duet/store/store.hpp"
#include "duet/store/store_index.hpp"
#include "duet/event/timers.hpp"

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
    // Stopping or reloading (its check, streams written ahead): /healthz answers 503.
    bool draining() const { return draining_ || reload_pending_ || handing_over_; }
    bool draining_conns() const { return draining_; }
    // A stop (not a reload) is under way: requests parked on the index are answered 503.
    bool stopping() const { return draining_ && !reloading_; }
    // A reload's check passed and the rests of streamed listings are being written ahead (see
    // prepare_slice): a new stream waits for the next image.
    bool preparing_hand_over() const { return handing_over_ && !draining_; }

    // Connections parked on the store index (Conn::parked). wake_parked() asks for all of them to
    // be run again after the current event; each parks again if what it waits for is not there.
    void park(Conn* c);
    void wake_parked() { wake_due_ = true; }
    // Cold downloads: a helper reads [off, off+len) of `fd` into the page cache (and asks the
    // kernel for the next window), then the connection is told (if still open) and woken.
    void read_ahead(Conn* c, int fd, off_t off, std::size_t len);
    // fsync(fd) on a helper (through a duplicate, so the caller may close fd meanwhile); the
    // result lands in the returned DiskWait and parked connections are woken.
    std::shared_ptr<DiskWait> fsync_later(int fd);
    // A delete whose unlink runs on a helper (Store::remove_async), or an upload's file being
    // created on one (Store::begin_upload_async): the connection parks with it here, and its
    // request, run again when woken, takes it back with the result.
    void wait_store_op(Conn* c, StoreOpRef op) {
        store_ops_[c] = std::move(op);
        park(c);
    }
    // One of another kind was left by a request that then went another way: dropped.
    StoreOpRef take_store_op(const Conn* c, StoreOp::Kind kind) {
        if (store_ops_.empty()) return {};
        auto it = store_ops_.find(c);
        if (it == store_ops_.end()) return {};
        StoreOpRef op = std::move(it->second);
        store_ops_.erase(it);
        if (op->kind != kind) return {};
        return op;
    }
    // The file an upload writes into, created on a helper (Store::begin_upload_async): false
    // while `c` waits for it (parked; its request runs again, checks included), else true with
    // `rc` the result of adopting it into `up` (0, or -errno / kStoreGone).
    bool upload_file(Conn* c, Upload& up, int& rc) {
        StoreOpRef op = take_store_op(c, StoreOp::Kind::TempFile);
        if (op && !op->done) return wait_store_op(c, std::move(op)), false;
        rc = op ? 0 : store.begin_upload_async(op);
        if (rc == 0 && !op->done) return wait_store_op(c, std::move(op)), false;
        if (rc == 0) rc = store.adopt_upload(*op, up);
        return true;
    }
    // A name the loop could not look up from the caches: a helper looks it up (store_lookup.cpp),
    // hands the result to the store and wakes the parked connections.
    void look_up_later(const std::string& name);
    // Gives the store its helper hooks (cold lookups, the disk half of publishes and deletes).
    void use_helpers_for_store();
    void drop_store_op(const Conn* c);  // a closed connection's, in conn_closed

    // Bytes of long bodies and files all connections together may write in one loop step, so a
    // step's copying stays bounded however many clients read at once; refilled every step.
    static constexpr std::size_t kOutputPerStep = 4u << 20;
    std::size_t output_budget() const { return out_budget_; }
    void spend_output(std::size_t n) { out_budget_ = n < out_budget_ ? out_budget_ - n : 0; }
    // Keeps an idle connection's socket for the next image (reload).
    void hand_over(Conn* c);

    const Config& cfg;  // refers to config_
    Loop loop;
    Store store;
    PartialStore partials;
    StoreIndex index{*this};
    Helpers helpers;  // after `index`: destroyed (joined) first
    BufferPool pool;
    Metrics metrics;
    TimerList header_timers;
    TimerList idle_timers;
    TimerList linger_timers;
    TimerList throttle_timers;  // connections parked by the guessing throttle, by release time
    AuthThrottle throttle;
    std::uint64_t generation = 0;
    std::uint64_t reloads = 0;
    double started_at = 0;         // CLOCK_REALTIME seconds of the first start of this PID
    InotifyFds inherited_inotify;  // from the previous image, taken over by start()

    void log(const char* fmt, ...) __attribute__((format(printf, 2, 3)));
    void access_log(const std::string& line);
    std::uint64_t log_lines_dropped() const {
        return out_log_.dropped_total() + err_log_.dropped_total();
    }

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
    std::unordered_map<const Conn*, StoreOpRef>
        store_ops_;  // closed ones are removed: a late answer finds none
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
    std::size_t out_budget_ = kOutputPerStep;
    std::vector<HandedConn> handover_;
    std::size_t open_conns_ = 0;
    std::int64_t now_ms_ = 0;
    std::int64_t date_second_ = -1;
    std::string date_header_;
    std::string root_body_;
    std::int64_t partial_sweep_at_ = 0;  // next bounded sweep of expired partial uploads
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
