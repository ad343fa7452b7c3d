#pragma once
// What both protocols share: a non-blocking socket, pooled input/output buffers, an optional file
// being sent with sendfile, timers, and the read → process → write pump with backpressure.
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "duet/core/body_source.hpp"
#include "duet/core/buffer.hpp"
#include "duet/core/fd.hpp"
#include "duet/core/handover.hpp"
#include "duet/event/loop.hpp"
#include "duet/event/timers.hpp"
#include "duet/net/auth_throttle.hpp"

namespace duet {

class ConnHost;
enum class Port : std::uint8_t { Http, Files };

class RestWriter;

class Conn : public Handler {
  public:
    Conn(ConnHost& host, int fd, Port port);
    ~Conn() override;
    void on_event(std::uint32_t events) final;

    Port port() const { return port_; }
    bool dead() const { return dead_; }
    int fd() const { return fd_.get(); }

    // Lifecycle hooks called by the server.
    virtual void on_header_timeout() = 0;
    virtual void on_idle_timeout();
    // A drain started (stop or reload): idle connections close (or are handed over), busy ones
    // finish their current work and then close.
    virtual void begin_drain(bool for_reload) = 0;
    // Called when the server drains and this connection has nothing in flight any more.
    virtual void on_quiet() { close_now(); }
    // True when nothing is in flight: no partial request, no pending output.
    virtual bool is_idle() const = 0;

    void close_now();  // immediate close: no lingering, nothing more sent
    // Keeps the socket open across exec: the caller takes the fd.
    int release_for_handover();
    // How the next image should take this connection back: see HandedConn.
    virtual char handover_kind() const { return port_ == Port::Http ? 'h' : 'f'; }

    // Reload hand-over of a connection in whatever state it is (conn_handover.cpp): the shared
    // state (socket, unread input, unsent output, a file being sent, close and linger flags, the
    // header deadline), then the protocol's own fields (encode_state). The fds go into the
    // record's table; the object is dead afterwards and closes nothing that was given away.
    HandoverRecord hand_over(HandoverFds& fds);
    // Next image: the shared half of resuming. `head_left_ms` gets the header deadline still to
    // run, or -1. false with r.error() on a record that does not hold together.
    bool resume_shared(RecordReader& r, std::int64_t& head_left_ms);
    // Parked by the guessing throttle (its head_timer is then on the throttle list).
    bool throttled() const { return throttled_; }
    // After the server has registered a resumed connection: linger again, or pick the work up.
    void after_resume();

    // Server-owned links: all connections in one intrusive list, plus the two timers.
    Conn* prev = nullptr;
    Conn* next = nullptr;
    TimerNode head_timer;  // header timeout, or the lingering-close deadline
    TimerNode idle_timer;  // no progress for --idle-timeout
    bool lingering() const { return lingering_; }
    static Conn* from_head_timer(TimerNode* n) { return static_cast<Conn*>(n->owner); }
    static Conn* from_idle_timer(TimerNode* n) { return static_cast<Conn*>(n->owner); }
    // The interest mask the server registered at accept time.
    void set_interest(std::uint32_t mask) { interest_ = mask; }
    // A parked token attempt may now be answered (the throttle's delay is over).
    void on_throttle_release();

    // Parked: the request at the head of the input waits for the store index (a digest being
    // computed, a listing being rendered). Its bytes stay unconsumed; when the server wakes the
    // connection, the request is simply handled again from the start.
    bool parked() const { return parked_; }
    // An upload between its fsyncs and its rename (helpers at work): a reload waits for it.
    virtual bool publishing() const { return false; }
    void set_parked(bool on) { parked_ = on; }
    void resume() { pump_now(); }
    // A read-ahead asked for by this connection finished (Server::read_ahead).
    void disk_ready() { disk_wait_ = false; }

    // Reload (Server::prepare_slice): the body this connection renders as its client reads,
    // held while its rest is written ahead; nothing more is sent from it meanwhile (the client
    // just waits those few milliseconds). nullptr when there is none.
    BodySource* hold_source();
    // That rest is written: from here on it is sent as a file range (or, the fall-back, as a
    // long body), which the hand-over carries as it is.
    void source_prepared(RestWriter& w);

    // The record field that carries a body source's state over a reload (BodySource::encode);
    // the protocol's resume_state turns it back into a source.
    static constexpr std::uint16_t kSourceStateTag = 15;

  protected:
    // The protocol's half of a hand-over record, and its kind and version.
    virtual void encode_state(RecordWriter& w) = 0;
    virtual char record_kind() const = 0;
    virtual std::uint16_t record_version() const = 0;

    // Consumes buffered input and queues output. Returns true if it made progress.
    virtual bool process() = 0;
    // The peer half-closed (read returned 0).
    virtual void on_eof() = 0;
    // Whether to read more from the socket now (protocol-level backpressure).
    virtual bool wants_input() const;

    bool output_pending() const { return !out_.empty() || output_blocked(); }
    // A long body or a file is queued: later answers must wait until it has gone out.
    bool output_blocked() const { return extra_ || source_ || file_left_ > 0; }
    // Runs the pump from outside an event (timeouts, drain).
    void pump_now();
    // Output queue: out_ (heads, short bodies), then extra_ (a long body), then a file range.
    bool queue(const char* p, std::size_t n);
    bool queue(std::string_view s) { return queue(s.data(), s.size()); }
    void queue_extra(std::string body);
    // A long body shared by many connections (a listing): sent from the one copy.
    void queue_shared(std::shared_ptr<const std::string> body, std::size_t offset = 0);
    void queue_file(Fd file, off_t offset, std::uint64_t length);
    // A body rendered as the client reads, after what is queued (nothing else may follow it in).
    void queue_source(std::unique_ptr<BodySource> source);
    std::size_t out_room() const { return out_.data ? kBufferSize - out_.size() : kBufferSize; }
    // After the queued output: close (with a lingering read so the peer sees the answer).
    void close_after_output() { closing_ = true; }
    // The peer may still be sending (an unread body): read and drop it before closing.
    void expect_unread_input() { linger_hint_ = true; }
    bool closing() const { return closing_; }
    void touch_progress();
    std::string peer_address() const;  // for the access log
    AuthAddr peer_key() const;         // for the guessing throttle
    void arm_header_timer();
    void cancel_header_timer();

    // Token guessing (README "Tokens"), the same on both ports. Before checking a token: true when
    // the attempt must wait; the connection is then parked (no reading, no processing) and the
    // same input is processed again once the delay is over. The loop and everyone else go on.
    bool auth_attempt_must_wait();
    // After checking a token. true when the connection has failed too often and must close.
    bool auth_result(bool ok);

    ConnHost& host_;
    Fd fd_;
    Buffer in_;
    Buffer out_;

  private:
    void pump();
    void read_input();
    // Writes what it can. true when the whole queue is gone.
    bool flush();
    // Asks for EPOLLOUT: the rest of the output goes when the socket can take it.
    void wait_writable();
    // After a write returned -1 (not EINTR): wait on EAGAIN, close on anything else.
    void write_blocked_or_failed();
    void finish_close();
    void update_interest();
    void start_lingering();

    // Fills out_ from source_, within `turn` and the step's output budget.
    void refill(std::size_t& turn);
    // Reload: what source_ still owes into an anonymous memory file, sent by the next image. A
    // safety net: the server writes every held source ahead (Server::prepare_slice).
    void hand_over_source(RecordWriter& w);

    std::shared_ptr<const std::string> extra_;
    std::unique_ptr<BodySource> source_;
    Fd file_;
    std::uint32_t extra_sent_ = 0;  // next to file_: no padding (long bodies stay < 4 GiB)
    off_t file_off_ = 0;
    std::uint64_t file_left_ = 0;
    // Cold downloads: bytes up to here were seen in the page cache, so sendfile cannot wait for
    // the disk before it; beyond, a helper reads ahead while the connection is parked.
    std::uint64_t resident_until_ = 0;
    std::uint32_t interest_ = 0;
    Port port_;
    // One bit each: with the fields above they fit the 8 bytes after interest_, which keeps an idle
    // HTTP connection in a 256-byte allocation (bench/footprint.sh counts bytes per connection).
    bool dead_ : 1 = false;
    bool closing_ : 1 = false;
    bool lingering_ : 1 = false;
    bool want_out_ : 1 = false;
    bool linger_hint_ : 1 = false;
    bool throttled_ : 1 = false;         // parked until the throttle releases it (head_timer)
    bool throttle_cleared_ : 1 = false;  // the attempt being re-processed has waited its turn
    std::uint8_t auth_failures_ = 0;
    bool parked_ : 1 = false;
    bool disk_wait_ : 1 = false;    // a read-ahead for this connection is in flight
    bool source_held_ : 1 = false;  // source_'s rest is being written ahead (hold_source)
};

}  // namespace duet
