// Reload without waiting (README "Stop and reload"): every connection, whatever it is doing, is
// written as its protocol's record into a sealed memfd, and the new image takes each one back where
// it stood. The server only carries the records: it never looks inside one.
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>

#include "duet/core/clock.hpp"
#include "duet/core/trace.hpp"
#include "duet/fileport/file_conn.hpp"
#include "duet/http/http_conn.hpp"
#include "duet/server/server.hpp"

namespace duet {
void Server::on_check_done(bool ok, const std::string& output) {
    trace_reload("--check done");
    reload_pending_ = false;
    if (draining_) return;  // a stop came in meanwhile
    if (!ok) {
        log("reload cancelled, still serving generation %llu: new binary failed --check: %s",
            static_cast<unsigned long long>(generation), output.c_str());
        return;
    }
    std::string reads;
    if (check_reads_format(output, kHandoverFormat, reads)) {
        handing_over_ = true;
        start_preparing();
        // An upload between its fsyncs (on a helper) and its answer crosses no exec: the
        // reload waits the few milliseconds until none is (continue_hand_over).
        if (any_publishing()) partials.hold_checkpoints(true);  // no new ones meanwhile
        continue_hand_over();
        return;
    }
    log("reload: the new image reads hand-over format(s) %s, not %u: draining in-flight work "
        "first (up to --grace %.3g s); idle connections are handed over",
        reads.c_str(), unsigned(kHandoverFormat), config_.grace);
    begin_drain(true);
}

// The streams are the ones open now: one asked for from here on waits for the next image
// (StoreIndex::listing), so this has a fixed amount of work and ends.
void Server::start_preparing() {
    for (Conn* c = conns_; c; c = c->next)
        if (BodySource* s = c->hold_source())
            preparing_.push_back({c, std::make_unique<RestWriter>(*s)});
    prepare_next_ = 0;
    // Test hook (README "Stop and reload"): one turn per stream every N ms, so that a test can
    // signal the server while streams are being written ahead.
    const char* pace = getenv("DUET_TEST_PREPARE_PACE_MS");
    prepare_pace_ms_ = pace ? std::strtoll(pace, nullptr, 10) : 0;
    prepare_due_ms_ = now_ms_;
    if (!preparing_.empty())
        log("reload: writing ahead what %zu streamed listing(s) still owe", preparing_.size());
}

void Server::prepare_slice(std::int64_t budget_ns) {
    if (preparing_.empty()) return;
    std::size_t turns = ~std::size_t(0);
    if (prepare_pace_ms_ > 0) {
        if (now_ms_ < prepare_due_ms_) return;
        prepare_due_ms_ = now_ms_ + prepare_pace_ms_;
        turns = preparing_.size();
    }
    std::int64_t until = monotonic_ns() + budget_ns;
    do {
        if (prepare_next_ >= preparing_.size()) prepare_next_ = 0;
        Preparing& p = preparing_[prepare_next_];
        if (!p.rest->step(RestWriter::kChunk)) {
            ++prepare_next_;
            continue;
        }
        // Out of the list before the connection runs again (it may close).
        Preparing done = std::move(p);
        if (&p != &preparing_.back()) p = std::move(preparing_.back());
        preparing_.pop_back();
        if (int e = done.rest->memfd_error(); e != 0 && !done.rest->failed())
            log("reload: no memory file for a streamed listing's rest (%s): it travels in the "
                "hand-over record",
                std::strerror(e));
        done.conn->source_prepared(*done.rest);
    } while (!preparing_.empty() && --turns > 0 && monotonic_ns() < until);
}

void Server::continue_hand_over() {
    if (!handing_over_ || !preparing_.empty() || any_publishing()) return;
    handing_over_ = false;
    trace_reload("nothing to wait for: hand-over begins");
    partials.hold_checkpoints(false);
    if (draining_) return;        // a stop came in meanwhile: it won
    if (hand_over_all()) return;  // execs; back here only if the hand-over could not start
    wake_parked();  // the listings that waited for the next image are answered here after all
    begin_drain(true);
}

bool Server::hand_over_all() {
    // Normally empty (continue_hand_over waits for it): a stream left half written ahead has
    // its bytes in its writer, not in the source any more.
    while (!preparing_.empty()) {
        Preparing p = std::move(preparing_.back());
        preparing_.pop_back();
        while (!p.rest->step(~std::size_t(0))) {
        }
        p.conn->source_prepared(*p.rest);
    }
    Fd memfd = open_handover_memfd();
    if (!memfd) {
        log("reload: cannot make the hand-over memfd (%s): draining in-flight work first",
            std::strerror(errno));
        return false;
    }
    notify_service_manager("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(monotonic_us()));
    pause_accepting();  // the listeners stay open: new clients wait in the backlog
    HandoverOut out;
    if (const char* n = getenv("DUET_TEST_CORRUPT_HANDOVER")) out.corrupt = std::strtoul(n, 0, 10);
    std::size_t http = 0, files = 0;
    while (Conn* c = conns_) {
        if (c->port() == Port::Http)
            ++http;
        else
            ++files;
        out.records.push_back(c->hand_over(out.fds));  // unlinks it from conns_
    }
    reap_dead();
    trace_reload("connections written as records");
    int fd = write_handover(out, std::move(memfd));
    trace_reload("hand-over sealed");
    // Buffered log lines go out as far as the reader takes them without blocking; the next
    // image starts from fds 1 and 2 as inherited.
    out_log_.detach();
    err_log_.detach();
    if (fd < 0) {
        log("reload: writing the hand-over failed (%s): %zu connection(s) cut", std::strerror(-fd),
            http + files);
    } else {
        log("reload: handing %zu HTTP and %zu file-port connection(s) to the new image", http,
            files);
    }
    std::fflush(stdout);
    std::fflush(stderr);
    pass_stalls();
    reexec(exe_, argv_, http_listener_.fd.get(), files_listener_.fd.get(), {}, fd, passed_inotify(),
           generation + 1, reloads + 1, started_at);
    log("reload failed: cannot exec %s: %s", exe_.c_str(), std::strerror(errno));
    std::_Exit(1);
}

void Server::resume_handed(HandoverIn& in) {
    if (!in.error.empty() || in.unclaimed_sockets > 0) {
        // main.cpp closed them before this image opened anything: the clients saw EOF at once.
        metrics.handover_lost += in.unclaimed_sockets;
        if (!in.error.empty()) {
            log("reload: the hand-over cannot be read (%s): %zu connection(s) it held closed",
                in.error.c_str(), in.unclaimed_sockets);
            return;
        }
        log("reload: no hand-over record came with the passed sockets: %zu connection(s) it held "
            "closed",
            in.unclaimed_sockets);
    }
    struct Resumed {
        Conn* conn;
        std::int64_t head_left_ms;
    };
    std::vector<Resumed> resumed;
    resumed.reserve(in.records.size());
    std::size_t index = 0, refused = 0;
    for (const HandoverIn::Record& rec : in.records) {
        ++index;
        RecordReader r(in.fds);
        std::int64_t head_left = -1;
        Conn* c = nullptr;
        if (!r.parse(rec.body)) {
        } else if (rec.kind == kRecordHttp) {
            c = HttpConn::resume(*this, rec.version, r, head_left);
        } else if (rec.kind == kRecordFiles) {
            c = FileConn::resume(*this, rec.version, r, head_left);
        } else {
            r.fail(std::string("unknown record kind '") + rec.kind + "'");
        }
        if (!c) {
            // Its fds were claimed by the failed decoder (and closed with it) or stay in the
            // table, which closes them below: either way the client sees its connection close.
            ++refused;
            ++metrics.handover_lost;
            log("reload: hand-over record %zu cannot be read (%s): that connection is closed",
                index, r.error().c_str());
            continue;
        }
        resumed.push_back({c, head_left});
    }
    in.fds.clear();  // closes every fd no record claimed
    // Header deadlines are armed in order, so each insertion is O(1) and the list stays sorted.
    std::stable_sort(resumed.begin(), resumed.end(), [](const Resumed& a, const Resumed& b) {
        return a.head_left_ms < b.head_left_ms;
    });
    std::int64_t limit = std::int64_t(config_.header_timeout * 1000.0 + 0.5);
    for (const Resumed& r : resumed) {
        link_conn(r.conn, r.conn->fd());
        if (r.conn->dead()) continue;
        if (r.conn->throttled())
            throttle_timers.insert_at(r.conn->head_timer,
                                      now_ms_ + std::max<std::int64_t>(0, r.head_left_ms));
        else if (r.head_left_ms >= 0)
            header_timers.insert_at(r.conn->head_timer, now_ms_ + std::min(r.head_left_ms, limit));
    }
    for (const Resumed& r : resumed)
        if (!r.conn->dead()) r.conn->after_resume();
    if (refused > 0 || !resumed.empty())
        log("reload: %zu connection(s) resumed, %zu refused", resumed.size(), refused);
}

}  // namespace duet
