// An HTTP connection crossing a reload: the exchange in hand, and a request body being read
// (sized or chunked, stored by an upload or dropped) with its digests and what it is owed. The
// answer bytes already queued (a 100 Continue not yet sent, a download's head) and the file range
// of a download travel in the shared part (conn_handover.cpp).
#include "duet/http/http_conn.hpp"
#include "duet/store/tar_stream.hpp"

namespace duet {
namespace {
// HTTP tags, from 32 (1-31 are the shared ones). Add a field: one line in encode_state, one in
// resume_state.
enum : std::uint16_t {
    kRequests = 32,
    kHeadOnly = 33,
    kKeepAlive = 34,
    kMinor = 35,
    kDrainClose = 36,
    kLogLine = 37,
    kBody = 38,
    kCors = 39,          // the --cors entry the request's Origin matched
    kEventsFolder = 40,  // an event stream (http_events.cpp): its folder
    kEventsCursor = 41,  // and the last event id sent
};
// Tags inside the body record.
enum : std::uint16_t {
    kBodyKind = 1,
    kBodyLeft = 2,
    kChunked = 3,
    kUpload = 4,
    kName = 5,
    kExpected = 6,        // ExpectedDigest: the digest, when one was given
    kDigestConflict = 7,  // ExpectedDigest: two fields disagreed
    kPrecondition = 8,    // Precondition: kind, then the ETag digest for MustMatch
    kResumable = 9,       // a resumable-upload append (http_uploads.cpp): the record below
};
// Tags inside the resumable record.
enum : std::uint16_t {
    kAppend = 1,  // PartialAppend::hand_over: partial ID, data fd, offsets, hash states
    kDoor = 2,
    kInterop = 3,
    kComplete = 4,
    kCreation = 5,
    kChecksum = 6,  // tus Upload-Checksum digest, when the append carries one
    kAnnounced = 7,
};
}  // namespace

void HttpConn::encode_state(RecordWriter& w) {
    w.u64(kRequests, requests_);
    w.flag(kHeadOnly, ex_.head_only);
    w.u64(kKeepAlive, ex_.keep_alive);
    w.u64(kMinor, ex_.minor);
    w.flag(kDrainClose, drain_close_);
    if (rare_ && rare_->log_line) w.bytes(kLogLine, *rare_->log_line);
    w.u64(kCors, ex_.cors);
    if (events_active()) {
        w.bytes(kEventsFolder, rare_->events->folder);
        w.u64(kEventsCursor, rare_->events->cursor);
        end_events();
    }
    if (body_) {
        Body& b = *body_;
        RecordWriter sub = w.child();
        sub.u64(kBodyKind, std::uint64_t(b.kind));
        sub.u64(kBodyLeft, b.left);
        if (b.kind == BodyKind::Chunked) sub.bytes(kChunked, b.chunked.save());
        if (b.upload.active()) {
            RecordWriter up = sub.child();
            b.upload.hand_over(up);
            sub.record(kUpload, up);
            sub.bytes(kName, b.name);
            if (b.expected.any)
                sub.bytes(kExpected,
                          std::string_view(reinterpret_cast<const char*>(b.expected.d.data()),
                                           b.expected.d.size()));
            sub.flag(kDigestConflict, b.expected.conflict);
            sub.bytes(kPrecondition, encode_precondition(b.pre));
        }
        if (b.resumable && b.resumable->append.active()) {
            ResumableBody& rb = *b.resumable;
            RecordWriter res = sub.child();
            RecordWriter ap = res.child();
            rb.append.hand_over(ap);
            res.record(kAppend, ap);
            res.u64(kDoor, std::uint64_t(rb.door));
            res.u64(kInterop, rb.interop);
            res.flag(kComplete, rb.complete);
            res.flag(kCreation, rb.creation);
            if (rb.has_checksum)
                res.bytes(kChecksum,
                          std::string_view(reinterpret_cast<const char*>(rb.checksum.data()),
                                           rb.checksum.size()));
            res.u64(kAnnounced, rb.announced);
            sub.record(kResumable, res);
        }
        w.record(kBody, sub);
        body_.reset();
    }
}

Conn* HttpConn::resume(SessionHost& host, std::uint16_t version, RecordReader& r,
                       std::int64_t& head_left_ms) {
    if (version != kRecordVersion) {
        r.fail("HTTP record version " + std::to_string(version) + " is not one this image reads");
        return nullptr;
    }
    auto c = std::make_unique<HttpConn>(host, -1);
    if (!c->resume_shared(r, head_left_ms) || !c->resume_state(r)) return nullptr;
    return c.release();
}

bool HttpConn::resume_state(RecordReader& r) {
    if (r.has(kSourceStateTag)) {  // a folder's tar on its way (README "Folders")
        auto tar = TarStream::decode(host().store.dirfd(), r.bytes(kSourceStateTag),
                                     host().store.pipe_runner().helpers);
        if (!tar) return r.fail("tar: bad state");
        queue_source(std::move(tar));
    }
    std::uint64_t requests = r.u64_or(kRequests, 0), minor = r.u64_or(kMinor, 1);
    if (minor > 1) return r.fail("bad HTTP minor version");
    requests_ = static_cast<std::uint32_t>(requests);
    ex_.head_only = r.flag(kHeadOnly);
    ex_.keep_alive = r.u64_or(kKeepAlive, 1) != 0;
    ex_.minor = static_cast<std::uint8_t>(minor);
    drain_close_ = r.flag(kDrainClose);
    std::uint64_t cors = r.u64_or(kCors, 0);
    if (cors > host().cfg.cors.size()) return r.fail("bad CORS entry");
    ex_.cors = static_cast<std::uint8_t>(cors);
    if (r.has(kLogLine)) set_log_line(std::string(r.bytes(kLogLine)));
    if (r.has(kEventsFolder)) {
        std::string folder(r.bytes(kEventsFolder));
        if (!folder.empty() && !valid_path(folder)) return r.fail("events: bad folder");
        auto es = std::make_unique<EventStream>(*this, host().index.feed());
        es->folder = std::move(folder);
        // From an earlier image: the feed answers it with a reset (ChangeFeed::read).
        es->cursor = r.u64_or(kEventsCursor, 0);
        rare().events = std::move(es);
    }
    if (!r.has(kBody)) return true;
    RecordReader sub = r.child();
    if (!r.record(kBody, sub)) return r.fail("body: " + sub.error());
    auto b = std::make_unique<Body>();
    std::uint64_t kind = sub.u64_or(kBodyKind, 0);
    if (kind != std::uint64_t(BodyKind::Length) && kind != std::uint64_t(BodyKind::Chunked))
        return r.fail("body: bad framing");
    b->kind = static_cast<BodyKind>(kind);
    b->left = sub.u64_or(kBodyLeft, 0);
    if (b->kind == BodyKind::Chunked && !b->chunked.restore(sub.bytes(kChunked)))
        return r.fail("body: bad chunked-decoder state");
    if (sub.has(kUpload)) {
        RecordReader up = sub.child();
        if (!sub.record(kUpload, up) || !b->upload.resume(host().store, up))
            return r.fail("upload: " + up.error());
        b->name = std::string(sub.bytes(kName));
        if (!valid_path(b->name)) return r.fail("upload: bad file name");
        if (sub.has(kExpected)) {
            std::string_view d = sub.bytes(kExpected);
            if (d.size() != b->expected.d.size()) return r.fail("upload: bad expected digest");
            std::copy(d.begin(), d.end(), b->expected.d.begin());
            b->expected.any = true;
        }
        b->expected.conflict = sub.flag(kDigestConflict);
        if (!decode_precondition(sub.bytes(kPrecondition), b->pre))
            return r.fail("upload: bad precondition");
    }
    if (sub.has(kResumable)) {
        RecordReader res = sub.child(), ap = sub.child();
        if (!sub.record(kResumable, res) || !res.record(kAppend, ap))
            return r.fail("resumable: " + res.error() + ap.error());
        auto rb = std::make_unique<ResumableBody>();
        if (!host().partials.resume_append(ap, rb->append))
            return r.fail("resumable: " + ap.error());
        std::uint64_t door = res.u64_or(kDoor, 0), interop = res.u64_or(kInterop, 0);
        if (door > std::uint64_t(UploadDoor::Tus) || interop > 255)
            return r.fail("resumable: bad door");
        rb->door = static_cast<UploadDoor>(door);
        rb->interop = static_cast<std::uint8_t>(interop);
        rb->complete = res.flag(kComplete);
        rb->creation = res.flag(kCreation);
        if (res.has(kChecksum)) {
            std::string_view d = res.bytes(kChecksum);
            if (d.size() != rb->checksum.size()) return r.fail("resumable: bad checksum");
            std::copy(d.begin(), d.end(), rb->checksum.begin());
            rb->has_checksum = true;
        }
        rb->announced = res.u64_or(kAnnounced, 0);
        b->resumable = std::move(rb);
    }
    body_ = std::move(b);
    return true;
}

}  // namespace duet
