// HTTP framing: request heads, bodies, keep-alive, pipelining, errors and timeouts.
#include "duet/http/http_conn.hpp"

#include <cerrno>
#include <cstring>

#include "duet/core/log_escape.hpp"
#include "duet/session/store_errors.hpp"

namespace duet {
namespace {
// Stop taking pipelined requests once this much output waits, so a client that sends and never
// reads cannot make us buffer without bound.
constexpr std::size_t kOutputHighWater = 32 * 1024;
}  // namespace

bool HttpConn::wants_input() const {
    if (closing()) return false;
    if (body_) return !body_->peer_gone;  // uploads keep reading while earlier output drains
    return out_.size() < kOutputHighWater && !output_blocked();
}

bool HttpConn::is_idle() const {
    return !body_ && in_.empty() && !output_pending() && !parked();
}

void HttpConn::on_eof() {
    if (events_active()) {  // the reader of an event stream left
        close_now();
        return;
    }
    // The client is done sending. A body cut short stores nothing; anything queued still goes out.
    if (body_ && body_->stage != PublishStage::None) {
        body_->peer_gone = true;  // complete and being published: answered, then closed
        return;
    }
    if (body_) {
        if (body_->upload.active()) ++host().metrics.uploads_failed;
        body_.reset();
    }
    if (!output_pending()) {
        close_now();
        return;
    }
    close_after_output();
}

HttpConn::~HttpConn() {
    // Closed mid-upload by a reset, a read error or a forced stop: as on the file port, the
    // temporary goes with the Upload and the metrics count it as failed.
    if (body_ && body_->upload.active()) ++host().metrics.uploads_failed;
}

void HttpConn::on_idle_timeout() {
    // A body that stopped arriving is answered before the close, like the file port's ERR 408.
    if (body_ && !closing()) {
        if (body_->upload.active()) ++host().metrics.uploads_failed;
        body_.reset();
        respond_fatal(408, "The request body stalled; nothing was stored.");
        pump_now();
        return;
    }
    close_now();
}

void HttpConn::on_header_timeout() {
    ++host().metrics.timeouts;
    if (output_pending() || body_) {
        close_now();
        return;
    }
    respond_fatal(408, "The request head did not arrive in time.");
    if (!dead()) pump_now();
}

void HttpConn::begin_drain(bool for_reload) {
    // Reload: keep-alive goes on, and each connection is handed to the next image as soon as it
    // has nothing in flight, so no client sees its connection closed. Stop: answers carry
    // Connection: close, and idle connections close now.
    reload_handover_ = for_reload;
    drain_close_ = !for_reload;
    // An event stream never finishes by itself: a stop closes it, a reload hands it over now.
    if (events_active()) return on_quiet();
    if (is_idle() || (!for_reload && !body_ && !output_pending() && requests_ > 0)) on_quiet();
}

void HttpConn::on_quiet() {
    if (reload_handover_)
        host().hand_over(this);
    else
        close_now();
}

bool HttpConn::process() {
    bool progressed = false;
    while (!dead() && !closing() && !parked()) {
        if (events_active()) {
            progressed |= pump_events();
            break;
        }
        if (body_ && body_->stage != PublishStage::None) {
            if (!advance_publish()) break;
            progressed = true;
            continue;
        }
        if (body_) {
            if (!feed_body()) break;
            progressed = true;
            continue;
        }
        if (in_.empty() || out_.size() >= kOutputHighWater || output_blocked()) break;
        // Re-parse only when a new line ended or a size limit was crossed: a client dribbling
        // a head byte by byte costs one parse per line, not one per byte.
        std::size_t size = in_.size();
        if (scanned_ < size && !parse_due(size)) {
            scanned_ = static_cast<std::uint32_t>(size);
            arm_header_timer();
            break;
        }
        Request req;
        ParseResult r = parse_request(in_.head(), size, req);
        if (r.status == ParseStatus::Incomplete) {
            scanned_ = static_cast<std::uint32_t>(size);
            arm_header_timer();
            break;
        }
        scanned_ = 0;
        cancel_header_timer();
        ex_ = Exchange{};
        if (r.status == ParseStatus::Error) {
            ex_.keep_alive = false;
            if (host().cfg.access_log) set_log_line("(bad request)");
            respond_fatal(r.http_status, r.message);
            expect_unread_input();
            break;
        }
        // A token attempt from an address that guessed too often waits its turn, parked; the
        // head stays in the buffer and is parsed again on release.
        if (needs_token(req) && req.find("authorization") && auth_attempt_must_wait()) break;
        handle(req);
        if (parked()) break;  // the request stays in in_ and is handled again when woken
        in_.consume(r.head_length);
        ++requests_;
        progressed = true;
    }
    return progressed;
}

// Whether the bytes that arrived since the last parse can change its answer: a new LF ends a line;
// past 32 KiB the head is too large (431); a request line still open past 8 KiB is too long (414).
bool HttpConn::parse_due(std::size_t size) const {
    const char* head = in_.head();
    if (std::memchr(head + scanned_, '\n', size - scanned_)) return true;
    if (size > kMaxHead) return true;
    return size > kMaxRequestLine + 1 && !std::memchr(head, '\n', scanned_);
}

void HttpConn::handle(const Request& req) {
    ex_.minor = static_cast<std::uint8_t>(req.minor);
    ex_.keep_alive = req.keep_alive && !drain_close_;
    // A client waiting for 100 Continue gets any other answer with a close (README "Uploads");
    // put_file turns this back when it accepts the body.
    if (req.expect_continue && req.body != BodyKind::None) ex_.keep_alive = false;
    ex_.head_only = req.method == "HEAD";
    if (host().cfg.access_log) {
        // Method and target are the client's bytes: escaped (README "Limits").
        std::string line;
        append_log_escaped(line, req.method);
        line += ' ';
        append_log_escaped(line, req.target);
        line += req.minor ? " HTTP/1.1" : " HTTP/1.0";
        set_log_line(std::move(line));
    }
    route(req);
    if (parked()) return;
    // A body nobody asked for is still read, so the next request starts where it should; after an
    // answer that closes, it is only drained while we linger.
    if (!body_ && req.body != BodyKind::None) {
        if (closing())
            expect_unread_input();
        else
            start_body(req, false);
    }
}

void HttpConn::start_body(const Request& req, bool store) {
    if (!body_) body_ = std::make_unique<Body>();
    body_->kind = req.body;
    body_->left = req.content_length;
    if (!store) body_->upload = Upload{};
}

// Moves body bytes from in_ to the upload (or drops them). false when it needs more input.
bool HttpConn::feed_body() {
    Body& b = *body_;
    bool done = false;
    while (!in_.empty() && !done) {
        // The helper writing the bytes is behind (the upload's pipe is full), or a resumable
        // append is two checkpoints ahead of the disk: read again once the helper caught up.
        if (b.resumable ? b.resumable->append.backlogged() : b.upload.backlogged()) {
            host().park(this);
            return false;
        }
        std::string_view chunk;
        if (b.kind == BodyKind::Length) {
            std::size_t n = in_.size() < b.left ? in_.size() : std::size_t(b.left);
            chunk = std::string_view(in_.head(), n);
            in_.consume(n);
            b.left -= n;
            done = b.left == 0;
        } else {
            std::string_view in(in_.head(), in_.size());
            auto st = b.chunked.decode(in, chunk);
            in_.consume(in_.size() - in.size());
            if (st == ChunkedDecoder::Status::Error) {
                if (b.upload.active()) ++host().metrics.uploads_failed;
                const char* why = b.chunked.error();  // static text; `b` dies with body_
                body_.reset();
                respond_fatal(400, why);
                expect_unread_input();
                return false;
            }
            done = st == ChunkedDecoder::Status::Done;
        }
        if (b.resumable) {
            if (!chunk.empty() && !feed_resumable(chunk)) return false;
            continue;
        }
        if (!chunk.empty() && b.upload.active()) {
            if (b.upload.size() + chunk.size() > host().cfg.max_upload) {
                ++host().metrics.uploads_failed;
                body_.reset();
                respond_fatal(413, "The upload is larger than the server accepts.");
                expect_unread_input();
                return false;
            }
            int rc = b.upload.write(chunk.data(), chunk.size());
            if (rc < 0) {
                ++host().metrics.uploads_failed;
                body_.reset();
                bool full = disk_full(rc);
                respond_fatal(full ? 507 : 500,
                              full ? "The disk is full; nothing was stored."
                                   : "Writing the upload failed; nothing was stored.");
                expect_unread_input();
                return false;
            }
        }
    }
    if (b.kind == BodyKind::Length && b.left == 0) done = true;
    if (!done) return false;
    if (b.upload.active()) {
        if (finish_upload()) return true;  // the body stays while it is published
        body_.reset();
        return true;
    }
    if (b.resumable) {
        if (finish_resumable()) return true;  // a completed upload stays while it is published
        body_.reset();
        return true;
    }
    body_.reset();
    return true;
}

void HttpConn::send(ResponseHead& head, std::string_view body) {
    end_head(head, body.size());
    std::string_view h = head.finish();
    queue(h);
    if (!ex_.head_only && !body.empty()) queue(body);
    log_access(head.status(), body.size());
}

void HttpConn::send_long(ResponseHead& head, std::string body) {
    end_head(head, body.size());
    queue(head.finish());
    log_access(head.status(), body.size());
    if (!ex_.head_only) queue_extra(std::move(body));
}

void HttpConn::send_file(ResponseHead& head, Fd file, std::uint64_t offset, std::uint64_t length) {
    end_head(head, length);
    queue(head.finish());
    log_access(head.status(), length);
    if (!ex_.head_only) {
        ++host().metrics.downloads;
        queue_file(std::move(file), static_cast<off_t>(offset), length);
    }
}

void HttpConn::end_head(ResponseHead& head, std::uint64_t length) {
    int s = head.status();
    if (s >= 200 && s != 204 && s != 304) head.content_length(length);
    if (ex_.cors) cors_fields(head);
    // After CORS's "Vary: Origin", which a CORS client looks for first.
    if (ex_.vary_accept) head.raw("Vary: Accept\r\n");
    if (!ex_.keep_alive || drain_close_) {
        head.raw("Connection: close\r\n");
        close_after_output();
    } else if (ex_.minor == 0) {
        head.raw("Connection: keep-alive\r\n");
    }
    host().metrics.count_status(s);
}

void HttpConn::respond(int status, std::string_view content_type, std::string_view body,
                       std::string_view extra_fields) {
    ResponseHead head(status, host().date_header());
    if (!content_type.empty()) head.header("Content-Type", content_type);
    head.raw(extra_fields);
    send(head, body);
}

void HttpConn::respond_error(int status, std::string_view message, std::string_view extra_fields) {
    respond(status, "application/json", json_error(message), extra_fields);
}

void HttpConn::respond_fatal(int status, std::string_view message, std::string_view extra_fields) {
    ex_.keep_alive = false;
    ex_.head_only = false;
    respond_error(status, message, extra_fields);
}

HttpConn::Rare& HttpConn::rare() {
    if (!rare_) rare_ = std::make_unique<Rare>();
    return *rare_;
}

void HttpConn::set_log_line(std::string line) {
    rare().log_line = std::move(line);
}

void HttpConn::log_access(int status, std::uint64_t bytes) {
    if (!host().cfg.access_log) return;
    char tail[64];
    std::snprintf(tail, sizeof tail, "\" %d %llu", status, static_cast<unsigned long long>(bytes));
    host().access_log(peer_address() + " http \"" +
                      (rare_ && rare_->log_line ? *rare_->log_line : "") + tail);
}

}  // namespace duet
