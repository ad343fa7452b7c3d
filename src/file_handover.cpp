// A file-port session crossing a reload: its AUTH, an upload being received (sized or until
// half-close, with its expected digest), and a LIST being streamed (the entries still owed, from
// the snapshot its "OK COUNT" promised). Buffered input and unsent output travel in the shared
// part (conn_handover.cpp).
#include <cstring>

#include "duet/file_conn.hpp"
#include "duet/server.hpp"

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
};
// Inside the listing record: one entry per line still owed, in order.
enum : std::uint16_t { kEntry = 1 };
constexpr std::size_t kEntryFixed = 8 + 8 + 32 + 1;  // size, mtime, digest, readable; the name

void put_u64(std::string& out, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}
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
        up_->upload.hand_over(up);
        sub.record(kUpload, up);
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
    if (listing_) {
        RecordWriter sub = w.child();
        for (std::size_t i = listing_->next; i < listing_->files.size(); ++i) {
            const FileInfo& f = listing_->files[i];
            std::string e;
            put_u64(e, f.size);
            put_u64(e, std::uint64_t(f.mtime));
            e.append(reinterpret_cast<const char*>(f.sha256.data()), f.sha256.size());
            e += f.readable ? '\1' : '\0';
            e += f.name;
            sub.bytes(kEntry, e);
        }
        w.record(kListing, sub);
        listing_.reset();
    }
}

Conn* FileConn::resume(Server& srv, std::uint16_t version, RecordReader& r,
                       std::int64_t& head_left_ms) {
    if (version != kRecordVersion) {
        r.fail("file-port record version " + std::to_string(version) +
               " is not one this image reads");
        return nullptr;
    }
    auto c = std::make_unique<FileConn>(srv, -1);
    if (!c->resume_shared(r, head_left_ms) || !c->resume_state(r)) return nullptr;
    return c.release();
}

bool FileConn::resume_state(RecordReader& r) {
    authed_ = r.flag(kAuthed);
    peer_closed_ = r.flag(kPeerClosed);
    drain_ = r.flag(kDrain);
    if (r.has(kLogPeer) || r.has(kLogLine))
        log_ = std::make_unique<AccessLog>(
            AccessLog{std::string(r.bytes(kLogPeer)), std::string(r.bytes(kLogLine))});
    if (r.has(kIncoming)) {
        RecordReader sub = r.child(), up = r.child();
        if (!r.record(kIncoming, sub) || !sub.record(kUpload, up))
            return r.fail("upload: " + sub.error() + up.error());
        auto in = std::make_unique<Incoming>();
        if (!in->upload.resume(srv_.store, up)) return r.fail("upload: " + up.error());
        in->name = std::string(sub.bytes(kName));
        in->left = sub.u64_or(kLeft, 0);
        in->sized = sub.u64_or(kSized, 1) != 0;
        if (!valid_name(in->name)) return r.fail("upload: bad file name");
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
        RecordReader sub = r.child();
        if (!r.record(kListing, sub)) return r.fail("listing: " + sub.error());
        auto l = std::make_unique<Listing>();
        for (std::string_view e : sub.all(kEntry)) {
            if (e.size() <= kEntryFixed) return r.fail("listing: short entry");
            FileInfo f;
            f.size = get_u64(e.data());
            f.mtime = std::int64_t(get_u64(e.data() + 8));
            std::memcpy(f.sha256.data(), e.data() + 16, f.sha256.size());
            f.readable = e[48] != 0;
            f.name = std::string(e.substr(kEntryFixed));
            if (!valid_name(f.name)) return r.fail("listing: bad name");
            l->files.push_back(std::move(f));
        }
        if (!l->files.empty()) listing_ = std::move(l);
    }
    return true;
}

}  // namespace duet
