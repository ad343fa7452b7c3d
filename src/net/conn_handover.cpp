// The part of a hand-over record every connection shares (STYLE pattern 16): the socket, bytes
// read but not consumed (half a head, half a command line, pipelined requests, body bytes), every
// unsent byte of output, a file range being sent, and how the connection ends.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "duet/net/conn.hpp"
#include "duet/net/conn_host.hpp"
#include "duet/net/rest_writer.hpp"

namespace duet {
namespace {
// Shared tags are 1-31; each protocol numbers its own from 32. Add a field: one line in
// hand_over, one in resume_shared.
enum : std::uint16_t {
    kSocket = 1,
    kInput = 2,
    kOutput = 3,
    kExtra = 4,
    kFile = 5,
    kFileOffset = 6,
    kFileLeft = 7,
    kClosing = 8,
    kLingerHint = 9,
    kLingering = 10,
    kHeadLeftMs = 11,
    kThrottledMs = 12,      // parked by the guessing throttle: time left until released
    kThrottleCleared = 13,  // the attempt being re-processed has had its wait
    kAuthFailures = 14,
    // 15: Conn::kSourceStateTag
};
static_assert(Conn::kSourceStateTag == kAuthFailures + 1);

bool is_connected_stream(int fd) {
    int type = 0, listening = 0;
    socklen_t len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) return false;
    len = sizeof listening;
    return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening == 0;
}
}  // namespace

HandoverRecord Conn::hand_over(HandoverFds& fds) {
    RecordWriter w(fds);
    host_.loop.remove(fd_.get());
    if (head_timer.linked() && !lingering_) {
        // head_timer is the header deadline, or the throttle's release time while parked.
        std::int64_t left = head_timer.deadline_ms - host_.now_ms();
        w.u64(throttled_ ? kThrottledMs : kHeadLeftMs, std::uint64_t(left > 0 ? left : 0));
    }
    w.flag(kThrottleCleared, throttle_cleared_);
    w.u64(kAuthFailures, auth_failures_);
    cancel_header_timer();
    TimerList::cancel(idle_timer);
    w.fd(kSocket, std::move(fd_));
    if (!in_.empty()) w.bytes(kInput, std::string_view(in_.head(), in_.size()));
    if (!out_.empty()) w.bytes(kOutput, std::string_view(out_.head(), out_.size()));
    if (std::string state; source_ && !source_->can_write_ahead() && source_->encode(state)) {
        // A folder's tar: its state (what is left to send), after the file range in flight.
        w.bytes(kSourceStateTag, state);
        source_.reset();
    } else if (source_) {
        hand_over_source(w);  // with extra_, which goes before it
    } else if (extra_)
        w.bytes(kExtra, std::string_view(*extra_).substr(extra_sent_));
    if (file_left_ > 0 && file_) {
        w.fd(kFile, std::move(file_));
        w.u64(kFileOffset, std::uint64_t(file_off_));
        w.u64(kFileLeft, file_left_);
    }
    w.flag(kClosing, closing_);
    w.flag(kLingerHint, linger_hint_);
    w.flag(kLingering, lingering_);
    encode_state(w);
    dead_ = true;
    host_.conn_closed(this);
    return HandoverRecord{record_kind(), record_version(), w.take()};
}

// A body rendered as the client reads (a big listing) cannot be rendered by the next image: its
// index is rebuilt from the disk and does not hold the snapshot the client was promised. The old
// image writes the rest out to an anonymous memory file, which the next image sends like any
// file range: the rest costs page cache, not the new process's memory, and the record stays small.
// Normally the server has done that already, in slices before this step (Server::prepare_slice),
// and the connection sends the file like any other; this is the safety net for a source that was
// not written ahead, all in one go. If no memory file can be had, the rest travels as bytes.
void Conn::hand_over_source(RecordWriter& w) {
    if (!source_->can_write_ahead()) {  // a tar that could not encode its state: cut
        source_.reset();
        file_.reset();
        file_left_ = 0;
        closing_ = true;
        return;
    }
    host_.log("reload: a streamed listing's rest rendered in the hand-over step");
    RestWriter rest(*source_);
    while (!rest.step(~std::size_t(0))) {
    }
    std::string extra(extra_ ? std::string_view(*extra_).substr(extra_sent_) : "");
    std::uint64_t size = 0;
    if (rest.failed()) {
        // Cannot happen while the source keeps what changed ahead of it; if it did, the client
        // sees the body cut short and the connection closed, never a wrong one.
        closing_ = true;
        if (!extra.empty()) w.bytes(kExtra, extra);
    } else if (Fd mem = rest.take_file(size)) {
        if (!extra.empty()) w.bytes(kExtra, extra);
        w.fd(kFile, std::move(mem));
        w.u64(kFileOffset, 0);
        w.u64(kFileLeft, size);
    } else {
        extra += rest.take_bytes();
        if (!extra.empty()) w.bytes(kExtra, extra);
    }
    source_.reset();
}

bool Conn::resume_shared(RecordReader& r, std::int64_t& head_left_ms) {
    if (!r.fd(kSocket, fd_) || !is_connected_stream(fd_.get()))
        return r.fail("no connected stream socket");
    fcntl(fd_.get(), F_SETFL, fcntl(fd_.get(), F_GETFL) | O_NONBLOCK);
    for (auto [tag, buf] : {std::pair{kInput, &in_}, std::pair{kOutput, &out_}}) {
        std::string_view bytes = r.bytes(tag);
        if (bytes.empty()) continue;
        if (bytes.size() > kBufferSize) return r.fail("buffered bytes larger than a buffer");
        buf->acquire(host_.pool);
        if (!buf->data || !buf->append(bytes.data(), bytes.size())) return r.fail("out of buffers");
    }
    if (std::string_view extra = r.bytes(kExtra); !extra.empty())
        extra_ = std::make_unique<std::string>(extra);
    if (r.has(kFile)) {
        std::uint64_t off = 0, left = 0;
        struct stat st;
        if (!r.fd(kFile, file_) || !r.u64(kFileOffset, off) || !r.u64(kFileLeft, left) ||
            left == 0 || fstat(file_.get(), &st) != 0 || !S_ISREG(st.st_mode) ||
            off > std::uint64_t(st.st_size) || left > std::uint64_t(st.st_size) - off)
            return r.fail("the file being sent does not match the record");
        file_off_ = off_t(off);
        file_left_ = left;
    }
    closing_ = r.flag(kClosing);
    linger_hint_ = r.flag(kLingerHint);
    lingering_ = r.flag(kLingering);
    std::uint64_t left_ms;
    head_left_ms = r.u64(kHeadLeftMs, left_ms) ? std::int64_t(left_ms & 0xffffffffu) : -1;
    if (r.u64(kThrottledMs, left_ms)) {  // the server arms it on the throttle list
        throttled_ = true;
        head_left_ms = std::int64_t(left_ms & 0xffffffffu);
    }
    throttle_cleared_ = r.flag(kThrottleCleared);
    std::uint64_t failures = r.u64_or(kAuthFailures, 0);
    auth_failures_ = static_cast<std::uint8_t>(failures > 255 ? 255 : failures);
    return true;
}

void Conn::after_resume() {
    if (lingering_) {
        lingering_ = false;
        start_lingering();  // a fresh linger deadline: the answer is out, only the close is left
        return;
    }
    pump_now();
}

}  // namespace duet
