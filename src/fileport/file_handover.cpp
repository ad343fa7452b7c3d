// A file-port session crossing a reload: its AUTH, an upload being received (sized or until
// half-close, with its expected digest), and a LIST being streamed (the entries still owed, from
// the snapshot its "OK COUNT" promised). Buffered input and unsent output travel in the shared
// part (conn_handover.cpp).
#include <cstring>

#include "duet/fileport/file_conn.hpp"
#include "duet/store/tar_stream.hpp"

namespace duet {
namespace {
// File-port tags, from 32 (1-31 are the shared ones). Add a field: one line in encode_state, one
// in resume_state.
enum : std::uint16_t {
    kAuthed = 32,
    kPeerClosed = 33,
    kIncoming = 34,
    kListing = 35,
    kLogPeer = 36,
    kLogLine = 37,
    kDrain = 38,
};
// Inside the incoming-upload record.
enum : std::uint16_t {
    kUpload = 1,
    kName = 2,
    kLeft = 3,
    kSized = 4,
    kDigest = 5,
    kPrecondition = 6,  // if=: encode_precondition
    kAppend = 7,        // RESUME: PartialAppend::hand_over instead of kUpload
    kTotal = 8,         // the whole upload's SIZE (sized PUT and RESUME)
};
// Inside the listing record: one entry per line still owed, in order.
enum : std::uint16_t { kEntry = 1 };
constexpr std::size_t kEntryFixed = 8 + 8 + 32 + 1;  // size, mtime, digest, readable; the name

std::uint64_t get_u64(const char* p) {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= std::uint64_t(static_cast<unsigned char>(p[i])) << (8 * i);
    return v;
}
}  // namespace

void FileConn::encode_state(RecordWriter& w) {
    w.flag(kAuthed, authed_);
    w.flag(kPeerClosed, peer_closed_);
    w.flag(kDrain, drain_);
    if (log_) {
        w.bytes(kLogPeer, log_->peer);
        w.bytes(kLogLine, log_->line);
    }
    if (up_) {
        RecordWriter sub = w.child();
        RecordWriter up = sub.child();
        if (up_->append.active()) {
            up_->append.hand_over(up);
            sub.record(kAppend, up);
        } else {
            up_->upload.hand_over(up);
            sub.record(kUpload, up);
        }
        sub.u64(kTotal, up_->total);
        sub.bytes(kName, up_->name);
        sub.u64(kLeft, up_->left);
        sub.u64(kSized, up_->sized);
        if (up_->has_digest)
            sub.bytes(kDigest, std::string_view(reinterpret_cast<const char*>(up_->digest.data()),
                                                up_->digest.size()));
        sub.bytes(kPrecondition, encode_precondition(up_->pre));
        w.record(kIncoming, sub);
        up_.reset();  // handed over, not failed
    }
    // A LIST being sent is output like any other (Conn's long body): nothing of its own here.
}

Conn* FileConn::resume(SessionHost& host, std::uint16_t version, RecordReader& r,
                       std::int64_t& head_left_ms) {
    if (version != kRecordVersion) {
        r.fail("file-port record version " + std::to_string(version) +
               " is not one this image reads");
        return nullptr;
    }
    auto c = std::make_unique<FileConn>(host, -1);
    if (!c->resume_shared(r, head_left_ms) || !c->resume_state(r)) return nullptr;
    return c.release();
}

bool FileConn::resume_state(RecordReader& r) {
    if (r.has(kSourceStateTag)) {  // a folder's tar on its way (README "Folders")
        auto tar = TarStream::decode(host().store.dirfd(), r.bytes(kSourceStateTag),
                                     host().store.pipe_runner().helpers);
        if (!tar) return r.fail("tar: bad state");
        queue_source(std::move(tar));
    }
    authed_ = r.flag(kAuthed);
    peer_closed_ = r.flag(kPeerClosed);
    drain_ = r.flag(kDrain);
    if (r.has(kLogPeer) || r.has(kLogLine))
        log_ = std::make_unique<AccessLog>(
            AccessLog{std::string(r.bytes(kLogPeer)), std::string(r.bytes(kLogLine))});
    if (r.has(kIncoming)) {
        RecordReader sub = r.child(), up = r.child();
        if (!r.record(kIncoming, sub)) return r.fail("upload: " + sub.error());
        auto in = std::make_unique<Incoming>();
        if (sub.has(kAppend)) {
            if (!sub.record(kAppend, up) || !host().partials.resume_append(up, in->append))
                return r.fail("resume: " + sub.error() + up.error());
        } else if (!sub.record(kUpload, up) || !in->upload.resume(host().store, up)) {
            return r.fail("upload: " + sub.error() + up.error());
        }
        in->name = std::string(sub.bytes(kName));
        in->left = sub.u64_or(kLeft, 0);
        in->sized = sub.u64_or(kSized, 1) != 0;
        // Images before this one wrote the SIZE of a RESUME only; a sized PUT's is what it has
        // received plus what is left.
        in->total = sub.u64_or(kTotal, in->sized ? in->upload.size() + in->left : 0);
        if (!valid_path(in->name)) return r.fail("upload: bad file name");
        if (sub.has(kDigest)) {
            std::string_view d = sub.bytes(kDigest);
            if (d.size() != in->digest.size()) return r.fail("upload: bad digest");
            std::memcpy(in->digest.data(), d.data(), d.size());
            in->has_digest = true;
        }
        if (!decode_precondition(sub.bytes(kPrecondition), in->pre))
            return r.fail("upload: bad precondition");
        up_ = std::move(in);
    }
    if (r.has(kListing)) {
        // From an image that kept LIST entries apart: they become the lines still to send.
        RecordReader sub = r.child();
        if (!r.record(kListing, sub)) return r.fail("listing: " + sub.error());
        std::string lines;
        for (std::string_view e : sub.all(kEntry)) {
            if (e.size() <= kEntryFixed) return r.fail("listing: short entry");
            Digest d;
            std::memcpy(d.data(), e.data() + 16, d.size());
            std::string name(e.substr(kEntryFixed));
            if (!valid_path(name)) return r.fail("listing: bad name");
            lines += name + " " + std::to_string(get_u64(e.data())) + " " +
                     (e[48] != 0 ? to_hex(d) : std::string("-")) + "\n";
        }
        queue_extra(std::move(lines));
    }
    return true;
}

}  // namespace duet
