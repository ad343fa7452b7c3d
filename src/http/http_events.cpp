// GET /events?path=PATH/ (README "The page"): the changes in one folder as Server-Sent Events,
// read from the store index's change feed. The answer has no length: the stream goes on until
// the client leaves, a stop closes it, or a reload hands it to the next image, which goes on
// from the last id sent (with a reset when it cannot know what happened in between).
#include <cstdlib>

#include "duet/http/http_conn.hpp"
#include "duet/http/http_fields.hpp"
#include "duet/session/store_errors.hpp"

namespace duet {
namespace {
// Stop taking events from the feed while this much output waits for a slow reader; the feed
// keeps them (or a reset says they are gone).
constexpr std::size_t kEventsHighWater = 32 * 1024;
}  // namespace

void HttpConn::EventStream::poke() {
    conn.host().park(&conn);
    conn.host().wake_parked();
}

void HttpConn::start_events(const Request& req) {
    // ?path=a/b/ (percent-encoded as in a URL; a leading '/' is allowed), the top folder when
    // absent or empty.
    std::string raw(query_value(req.target, "path"));
    while (!raw.empty() && raw.front() == '/') raw.erase(0, 1);
    std::string folder;
    if (!raw.empty()) {
        bool is_folder = false;
        std::string why = decode_path(raw, folder, is_folder);
        if (!why.empty()) return respond_error(400, why);
    }
    StoreIndex& index = host().index;
    if (!index.holds_folder(folder)) {
        if (!index.built()) {
            store_trouble(-EINPROGRESS);
            return;
        }
        return respond_error(404, "No folder has this name.");
    }
    auto es = std::make_unique<EventStream>(*this, index.feed());
    es->folder = folder;
    es->cursor = index.feed().last_id();
    if (const Header* h = req.find("last-event-id")) {
        // Anything that is not one of our ids gets a reset (ChangeFeed::read).
        char* end = nullptr;
        std::string v(h->value);
        unsigned long long id = std::strtoull(v.c_str(), &end, 10);
        es->cursor = (!v.empty() && end && *end == '\0') ? id : 0;
    }
    // No Content-Length: the body ends when the connection does (RFC 9112 §6.3).
    ex_.keep_alive = false;
    ResponseHead head(200, host().date_header());
    head.header("Content-Type", "text/event-stream");
    head.raw("Cache-Control: no-store\r\nX-Accel-Buffering: no\r\nConnection: close\r\n");
    if (ex_.cors) cors_fields(head);
    host().metrics.count_status(200);
    queue(head.finish());
    log_access(200, 0);
    // A first line at once, so the client knows the stream is open.
    queue(": connected\n\n");
    rare().events = std::move(es);
}

bool HttpConn::pump_events() {
    in_.consume(in_.size());  // nothing more is read from an event stream's client
    EventStream& es = *rare_->events;
    bool progressed = false;
    if (es.keepalive_due) {
        es.keepalive_due = false;
        queue(": keep-alive\n\n");
        progressed = true;
    }
    if (out_.size() >= kEventsHighWater || output_blocked()) return progressed;
    std::string chunk;
    std::uint64_t before = es.cursor;
    es.cursor = es.feed.read(es.cursor, es.folder, chunk, kEventsHighWater - out_.size());
    if (!chunk.empty() && !queue(chunk)) queue_extra(std::move(chunk));
    return progressed || es.cursor != before;
}

void HttpConn::end_events() {
    if (rare_) rare_->events.reset();
}

}  // namespace duet
