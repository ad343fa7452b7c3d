// Stop and reload as intents: signals and watched files only record what is wanted; between loop
// steps the server acts on it. A drain is one sequence for both (README "Stop and reload"): stop
// accepting, close idle connections through their normal close path, let busy ones finish with
// Connection: close, cut at the deadline (--grace), then exit or exec the next image.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <memory>
#include <vector>

#include "duet/core/clock.hpp"
#include "duet/core/trace.hpp"
#include "duet/fileport/file_conn.hpp"
#include "duet/http/http_conn.hpp"
#include "duet/server/server.hpp"

namespace duet {

void Server::on_signal(int signo) {
    switch (signo) {
        case SIGINT:
        case SIGTERM:
            // A second stop request while one runs: do not wait any longer.
            intent_ = (draining_ && !reloading_) ? Intent::StopNow : Intent::Stop;
            if (draining_ && !reloading_) {
                log("second stop signal: exiting now");
                std::_Exit(1);
            }
            break;
        case SIGQUIT:
            log("SIGQUIT: exiting now, %zu connection(s) cut", open_conns_);
            std::_Exit(1);
        case SIGHUP:
            if (intent_ == Intent::None) intent_ = Intent::Reload;
            break;
        default:
            break;
    }
}

void Server::on_watch_event() {
    life_.change_seen(now_ms_);
}

void Server::act_on_intents() {
    if (life_.reload_due(now_ms_)) {
        life_.clear_reload_due();
        if (intent_ == Intent::None) intent_ = Intent::Reload;
    }
    life_.poll_check(now_ms_);
    Intent i = intent_;
    intent_ = Intent::None;
    if (i == Intent::Stop && reloading_) {
        // A stop during a reload's drain wins: what was kept for the next image closes now.
        notify_service_manager("STOPPING=1");
        for (const HandedConn& h : handover_) ::close(h.fd);
        handover_.clear();
        reloading_ = false;
        http_listener_.fd.reset();
        files_listener_.fd.reset();
        for (Conn* c = conns_; c;) {
            Conn* next = c->next;
            c->begin_drain(false);
            c = next;
        }
        log("stop requested during reload: stopping instead");
    } else if (i == Intent::Stop && !draining_) {
        // Log after the listeners are closed: whoever reads "stopping" may rely on refusals.
        begin_drain(false);
        // The user watching this line is the one deciding whether to wait: say for what, how
        // long at most, and how not to.
        if (drained_busy_ == 0)
            log("stopping: no connection busy, %zu idle closed", closed_idle_);
        else
            log("stopping: %zu connection(s) busy, waiting up to %.3g s (--grace) for them to "
                "finish, %zu idle closed; a second Ctrl+C (SIGINT or SIGTERM) stops at once",
                drained_busy_, config_.grace, closed_idle_);
    } else if (i == Intent::Reload && (reload_pending_ || handing_over_) && !draining_) {
        log("reload requested again: one is under way");
    } else if (i == Intent::Reload && !draining_) {
        log("reload requested: checking %s", exe_.c_str());
        trace_reload("signal: --check spawned next");
        reload_pending_ = true;
        if (!life_.start_check(exe_, argv_, now_ms_)) on_check_done(false, "cannot run the check");
    }
}

void Server::begin_drain(bool for_reload) {
    draining_ = true;
    reloading_ = for_reload;
    drain_started_ = now_ms_;
    drain_deadline_ = now_ms_ + ms_of(config_.grace);
    if (for_reload) {
        notify_service_manager("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(monotonic_us()));
    } else {
        notify_service_manager("STOPPING=1");
    }
    // Stop accepting. On reload the sockets stay open so that new clients wait in the backlog;
    // on stop they close so that new clients are refused at once instead of waiting for nobody.
    pause_accepting();
    if (!for_reload) {
        http_listener_.fd.reset();
        files_listener_.fd.reset();
    }
    std::size_t before = open_conns_;
    handover_.clear();
    for (Conn* c = conns_; c;) {
        Conn* next = c->next;
        c->begin_drain(for_reload);
        c = next;
    }
    closed_idle_ = before - open_conns_;
    drained_busy_ = open_conns_;
    // On stop, requests waiting for a digest or listing are answered 503 now (see stopping()).
    if (!for_reload) wake_now();
}

void Server::check_drain_done() {
    if (!draining_) return;
    std::size_t busy = 0;
    for (Conn* c = conns_; c; c = c->next)
        if (!c->lingering()) ++busy;
    // A stop finishes the checkpoints on helpers too (a cut upload's last one has no connection).
    if (!reloading_ && partials.syncing() > 0 && now_ms_ < drain_deadline_) return;
    bool cut = false;
    if (busy > 0) {
        if (now_ms_ < drain_deadline_) return;
        cut = true;
    }
    std::size_t cut_count = 0;
    for (Conn* c = conns_; c;) {
        Conn* next = c->next;
        if (!c->lingering()) ++cut_count;
        c->close_now();
        c = next;
    }
    std::int64_t took = monotonic_ms() - drain_started_;
    const char* what = reloading_ ? "reload" : "stop";
    if (cut) {
        log("%s: grace of %.3g s over: %zu connection(s) cut, %zu finished, %zu idle closed", what,
            config_.grace, cut_count, drained_busy_ - cut_count, closed_idle_);
    } else {
        log("%s: %zu busy connection(s) finished, %zu idle %s, in %lld ms", what, drained_busy_,
            closed_idle_, reloading_ ? "handed over" : "closed", static_cast<long long>(took));
    }
    if (reloading_) {
        finish_reload();
        return;
    }
    exit_code_ = 0;
}

void Server::finish_reload() {
    std::vector<HandedConn> conn_fds = std::move(handover_);
    handover_.clear();
    // The next image takes fds 1 and 2 as they were inherited (blocking), with what we could
    // still write of our buffered lines.
    out_log_.detach();
    err_log_.detach();
    pass_stalls();
    reexec(exe_, argv_, http_listener_.fd.get(), files_listener_.fd.get(), conn_fds, -1,
           passed_inotify(), generation + 1, reloads + 1, started_at);
    log("reload failed: cannot exec %s: %s", exe_.c_str(), std::strerror(errno));
    std::_Exit(1);
}

}  // namespace duet
