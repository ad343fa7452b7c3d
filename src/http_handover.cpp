// An HTTP connection crossing a reload: the exchange in hand, and a request body being read
// (sized or chunked, stored by an upload or dropped) with its digests and what it is owed. The
// answer bytes already queued (a 100 Continue not yet sent, a download's head) and the file range
// of a download travel in the shared part (conn_handover.cpp).
#include "duet/http_conn.hpp"
#include "duet/server.hpp"

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
};
}  // namespace

void HttpConn::encode_state(RecordWriter& w) {
    w.u64(kRequests, requests_);
    w.flag(kHeadOnly, ex_.head_only);
    w.u64(kKeepAlive, ex_.keep_alive);
    w.u64(kMinor, ex_.minor);
    w.flag(kDrainClose, drain_close_);
    if (log_line_) w.bytes(kLogLine, *log_line_);
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
        w.record(kBody, sub);
        body_.reset();
    }
}

Conn* HttpConn::resume(Server& srv, std::uint16_t version, RecordReader& r,
                       std::int64_t& head_left_ms) {
    if (version != kRecordVersion) {
        r.fail("HTTP record version " + std::to_string(version) + " is not one this image reads");
        return nullptr;
    }
    auto c = std::make_unique<HttpConn>(srv, -1);
    if (!c->resume_shared(r, head_left_ms) || !c->resume_state(r)) return nullptr;
    return c.release();
}

bool HttpConn::resume_state(RecordReader& r) {
    std::uint64_t requests = r.u64_or(kRequests, 0), minor = r.u64_or(kMinor, 1);
    if (minor > 1) return r.fail("bad HTTP minor version");
    requests_ = static_cast<std::uint32_t>(requests);
    ex_.head_only = r.flag(kHeadOnly);
    ex_.keep_alive = r.u64_or(kKeepAlive, 1) != 0;
    ex_.minor = static_cast<std::uint8_t>(minor);
    drain_close_ = r.flag(kDrainClose);
    if (r.has(kLogLine)) set_log_line(std::string(r.bytes(kLogLine)));
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
        if (!sub.record(kUpload, up) || !b->upload.resume(srv_.store, up))
            return r.fail("upload: " + up.error());
        b->name = std::string(sub.bytes(kName));
        if (!valid_name(b->name)) return r.fail("upload: bad file name");
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
    body_ = std::move(b);
    return true;
}

}  // namespace duet
