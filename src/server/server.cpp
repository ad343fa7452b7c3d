#include "duet/server/server.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <vector>

#include "duet/core/clock.hpp"
#include "duet/core/trace.hpp"
#include "duet/fileport/file_conn.hpp"
#include "duet/http/http_conn.hpp"
#include "duet/http/http_response.hpp"

namespace duet {
namespace {

constexpr int kAcceptsPerEvent = 64;
constexpr std::int64_t kAcceptRetryMs = 100;  // after EMFILE/ENFILE
constexpr std::int64_t kSliceNs =
    1000000;  // one slice of long loop work (README "Limits": about 1 ms)
constexpr int kHelperThreads = 2;

}  // namespace

void Listener::on_event(std::uint32_t) {
    srv_.accept_from(*this);
}

Server::Server(Config cfg, std::vector<std::string> argv, std::string exe)
    : SessionHost(config_),
      config_(std::move(cfg)),
      argv_(std::move(argv)),
      exe_(std::move(exe)),
      http_listener_(*this, Port::Http),
      files_listener_(*this, Port::Files) {
    header_timers.set_timeout(ms_of(config_.header_timeout));
    idle_timers.set_timeout(ms_of(config_.idle_timeout));
    linger_timers.set_timeout(2000);
}

void Server::vlog(const char* fmt, va_list ap) {
    char buf[1024];
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    err_log_.line(std::string("duet: ") + buf);
}

void Server::access_log(const std::string& line) {
    out_log_.line(line);
}

int Server::start(ListenSockets sockets, std::vector<HandedConn> handed_conns,
                  HandoverIn handover) {
    now_ms_ = monotonic_ms();
    tick();
    // A reload: the loop steps of the images before this one, the last one's hand-over included.
    if (generation > 0) metrics.adopt_stalls(getenv("DUET_LOOP_STALLS"));
    root_body_ = "{\"name\":\"duet\",\"version\":\"";
    root_body_.append(kVersion).append("\",\"generation\":");
    root_body_.append(std::to_string(generation)).append("}\n");
    std::string err;
    // Named temporaries of uploads carried over a reload are still being written: keep them.
    if (handover.present) store.keep_temps_at_open();
    store.set_index(&index);  // counting and sweeping happen in the index build, off the loop
    // Cold lookups, the disk half of publishes and deletes, new upload files: on the helpers.
    store.use_helpers(helpers, [this] { wake_parked(); });
    if (const char* v = std::getenv("DUET_TEST_COLD_LOOKUPS"); v && *v == '1')
        store.force_cold_lookups();
    if (!store.open(config_.data, err)) {
        log("store %s: %s", config_.data.c_str(), err.c_str());
        return 2;
    }
    if (!partials.open(store, metrics, std::int64_t(config_.partial_ttl), err)) {
        log("store %s: %s", config_.data.c_str(), err.c_str());
        return 2;
    }
    if (int rc = loop.init(); rc < 0) {
        log("epoll: %s", std::strerror(-rc));
        return 1;
    }
    out_log_.attach(loop);
    err_log_.attach(loop);
    helpers.set_on_nudge([this] { wake_parked(); });  // an upload's pipe has room again
    if (int rc = helpers.start(loop, kHelperThreads); rc < 0) {
        log("helper threads: %s", std::strerror(-rc));
        return 1;
    }
    partials.use_helpers(helpers, [this] { wake_parked(); });
    index.start(!handover.present, inherited_inotify.store);  // handed-over uploads' temps stay
    store.empty_trash();  // folders deleted just before a crash or a stop (README "Folders")
    http_listener_.fd = std::move(sockets.http);
    files_listener_.fd = std::move(sockets.files);
    resume_accepting();
    if (!life_.init(*this, loop, exe_, config_.watch, config_.reload, inherited_inotify.reload,
                    err)) {
        log("%s", err.c_str());
        return 2;
    }
    for (const HandedConn& h : handed_conns)
        add_conn(h.fd, h.kind == 'h' ? Port::Http : Port::Files, h.kind);
    trace_reload("new image: store, helpers, index started");
    if (handover.present || handover.unclaimed_sockets > 0) resume_handed(handover);
    trace_reload("new image: connections resumed");
    print_ready();
    notify_service_manager("READY=1\nSTATUS=serving\nMAINPID=" + std::to_string(getpid()));
    return 0;
}

// Assembled without printf: an idle duet then never maps libc's formatting code (its pages
// count in the resident size).
void Server::print_ready() {
    err_log_.line("duet: ready http=" + local_address(http_listener_.fd.get()) +
                  " files=" + local_address(files_listener_.fd.get()) + " data=" + config_.data +
                  " pid=" + std::to_string(getpid()) + " generation=" + std::to_string(generation));
}

void Server::tick() {
    now_ms_ = monotonic_ms();
    timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    if (ts.tv_sec != date_second_) {  // the Date field is formatted once a second, not per request
        date_second_ = ts.tv_sec;
        // Every response says nosniff (README "The page"): no browser guesses a type duet did not
        // send.
        date_header_ = "Date: " + http_date(ts.tv_sec) + "\r\nServer: duet/" + kVersion +
                       "\r\nX-Content-Type-Options: nosniff\r\n";
    }
}

void Server::accept_from(Listener& l) {
    for (int i = 0; i < kAcceptsPerEvent; ++i) {
        if (open_conns_ >= config_.max_conns) {
            pause_accepting();  // resumed when a connection closes
            return;
        }
        int fd = accept4(l.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED) return;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                // Out of descriptors: pausing beats spinning on a listener that stays readable.
                if (!accept_paused_)
                    log("accept: %s; pausing new connections", std::strerror(errno));
                pause_accepting();
                accept_retry_at_ = now_ms_ + kAcceptRetryMs;
                return;
            }
            return;
        }
        add_conn(fd, l.port());
    }
}

void Server::add_conn(int fd, Port port, char handed) {
    Conn* c;
    if (port == Port::Http) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c = new HttpConn(*this, fd);
    } else {
        auto* f = new FileConn(*this, fd);
        if (handed == 'a') f->set_authed();
        c = f;
    }
    // An HTTP client owes its first head at once; a file-port user may be typing into nc, so
    // there the clock starts with the first byte of a line. A keep-alive connection handed over
    // by a reload owes nothing yet: like any idle keep-alive one, only --idle-timeout applies
    // (an unsolicited 408 would be read as the answer to the client's next request).
    if (port == Port::Http && !handed) header_timers.touch(c->head_timer, now_ms_);
    link_conn(c, fd);  // last: a failed registration closes it, cancelling both timers
}

void Server::link_conn(Conn* c, int fd) {
    if (c->port() == Port::Http) {
        ++metrics.open_http;
    } else {
        ++metrics.open_files;
        ++metrics.file_sessions;
    }
    ++metrics.accepted;
    ++open_conns_;
    c->next = conns_;
    if (conns_) conns_->prev = c;
    conns_ = c;
    idle_timers.touch(c->idle_timer, now_ms_);
    c->set_interest(EPOLLIN);
    if (loop.add(fd, EPOLLIN, c) < 0) c->close_now();
}

void Server::conn_closed(Conn* c) {
    if (c->prev) c->prev->next = c->next;
    if (c->next) c->next->prev = c->prev;
    if (conns_ == c) conns_ = c->next;
    c->prev = c->next = nullptr;
    --open_conns_;
    if (c->port() == Port::Http)
        --metrics.open_http;
    else
        --metrics.open_files;
    dead_.push_back(c);
    reading_ahead_.erase(c);
    std::erase_if(preparing_, [c](const Preparing& p) { return p.conn == c; });
    drop_store_op(c);
    if (c->parked()) {
        for (auto& p : parked_)
            if (p == c) p = nullptr;
        c->set_parked(false);
    }
    if (accept_paused_ && accept_retry_at_ < 0 && !draining_ && !reload_pending_)
        resume_accepting();
}

void Server::reap_dead() {
    for (Conn* c : dead_) delete c;
    dead_.clear();
}

void Server::pause_accepting() {
    if (accept_paused_ && (http_listener_.registered || files_listener_.registered) == false)
        return;
    for (Listener* l : {&http_listener_, &files_listener_}) {
        if (l->registered) loop.remove(l->fd.get());
        l->registered = false;
    }
    accept_paused_ = true;
    ++metrics.accept_pauses;
}

void Server::resume_accepting() {
    accept_paused_ = false;
    accept_retry_at_ = -1;
    for (Listener* l : {&http_listener_, &files_listener_}) {
        if (l->registered || !l->fd) continue;
        if (loop.add(l->fd.get(), EPOLLIN, l) == 0) l->registered = true;
    }
}

void Server::hand_over(Conn* c) {
    char kind = c->handover_kind();
    handover_.push_back({c->release_for_handover(), kind});
}

void Server::expire_timers() {
    for (TimerNode* n; (n = header_timers.expired(now_ms_));) {
        TimerList::cancel(*n);
        Conn* c = Conn::from_head_timer(n);
        c->on_header_timeout();
    }
    for (TimerNode* n; (n = linger_timers.expired(now_ms_));) {
        TimerList::cancel(*n);
        Conn::from_head_timer(n)->close_now();
    }
    for (TimerNode* n; (n = throttle_timers.expired(now_ms_));) {
        TimerList::cancel(*n);
        Conn::from_head_timer(n)->on_throttle_release();
    }
    for (TimerNode* n; (n = idle_timers.expired(now_ms_));) {
        Conn* c = Conn::from_idle_timer(n);
        if (c->parked()) {
            // Waiting for duet's own work (a digest, a cold read, an fsync) is not the client
            // being idle: the clock starts again from now.
            idle_timers.touch(*n, now_ms_);
            continue;
        }
        TimerList::cancel(*n);
        ++metrics.timeouts;
        c->on_idle_timeout();
    }
    if (now_ms_ >= keepalive_at_) {
        // Event streams (README "The page"): a comment line every 15 s keeps proxies from closing
        // them, and more often under a short --idle-timeout, which would close them first.
        if (keepalive_at_ > 0) index.feed().keepalive();
        double half_idle = config_.idle_timeout * 500.0;
        keepalive_at_ = now_ms_ + std::int64_t(std::max(100.0, std::min(15000.0, half_idle)));
    }
    if (now_ms_ >= rescan_at_) {  // folders over the inotify watch limit (README "Folders")
        index.rescan_unwatched();
        rescan_at_ = now_ms_ + kRescanMs;
    }
    if (now_ms_ >= partial_sweep_at_) {
        // A bounded look at the partial uploads each second (every 10 ms while a look did not
        // reach the end): expiry never costs a long step, and keeps up with creation.
        bool more = partials.sweep(wall_seconds(), 4096);
        partial_sweep_at_ = now_ms_ + (more ? 10 : 1000);
    }
    if (accept_paused_ && accept_retry_at_ >= 0 && now_ms_ >= accept_retry_at_ && !draining_ &&
        !reload_pending_)
        resume_accepting();
}

int Server::next_timeout_ms() const {
    std::int64_t next = now_ms_ + 1000;  // at least once a second, for the Date field
    auto consider = [&](std::int64_t d) {
        if (d >= 0 && d < next) next = d;
    };
    consider(header_timers.next_deadline());
    consider(idle_timers.next_deadline());
    consider(keepalive_at_);
    consider(linger_timers.next_deadline());
    consider(throttle_timers.next_deadline());
    consider(life_.reload_due_ms());
    consider(accept_retry_at_);
    if (life_.check_running()) consider(now_ms_ + 10);  // poll the check child
    if (draining_) consider(drain_deadline_);
    if (wake_due_ || index.has_work()) consider(now_ms_);  // more slices: poll, do not wait
    if (!preparing_.empty()) consider(prepare_pace_ms_ > 0 ? prepare_due_ms_ : now_ms_);
    std::int64_t wait = next - now_ms_;
    return wait < 0 ? 0 : int(wait);
}

void Server::record_step(std::int64_t ns) {
    metrics.record_stall(double(ns) / 1e9);
}

void Server::pass_stalls() {
    if (step_started_ns_ >= 0) record_step(monotonic_ns() - step_started_ns_);
    step_started_ns_ = -1;
    setenv("DUET_LOOP_STALLS", metrics.stalls_env().c_str(), 1);
}

int Server::run() {
    while (exit_code_ < 0) {
        expire_timers();
        act_on_intents();
        check_drain_done();
        reap_dead();
        if (exit_code_ >= 0) break;
        if (step_started_ns_ >= 0) record_step(monotonic_ns() - step_started_ns_);
        int rc = loop.wait(next_timeout_ms());
        if (rc < 0) {
            log("epoll_wait: %s", std::strerror(-rc));
            return 1;
        }
        step_started_ns_ = monotonic_ns();
        out_budget_ = kOutputPerStep;
        tick();  // one clock read per iteration, taken after the wait
        loop.dispatch();
        if (wake_due_) wake_now();
        // Long loop work (listing renders) goes one slice per iteration, between events.
        if (index.has_work()) index.run_slice(kSliceNs);
        if (wake_due_) wake_now();
        store.forget_lookups();  // helpers' lookups served the requests they woke
        // A reload's streams written ahead, a slice per iteration too; then the hand-over.
        prepare_slice(kSliceNs);
        continue_hand_over();
        check_drain_done();
        reap_dead();
    }
    return exit_code_;
}

}  // namespace duet
