#include "duet/net/conn.hpp"

#include <arpa/inet.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "duet/core/ipv4.hpp"
#include "duet/net/conn_host.hpp"
#include "duet/net/rest_writer.hpp"

namespace duet {
namespace {
constexpr int kReadsPerEvent = 8;                     // fairness: then back to the loop
constexpr std::uint64_t kSendfilePerEvent = 2 << 20;  // bytes of a file per event
constexpr std::size_t kExtraPerEvent = 256 << 10;     // bytes of a long body per event
// A rendered body (a big listing) goes 16 KiB at a time from the front of the output buffer: only
// those pages of it are touched, so 20 clients listing 100,000 files cost 20 x 16 KiB.
constexpr std::size_t kSourceChunk = 16 << 10;

// Whether the file's bytes at `off` and `off + len - 1` are in the page cache: preadv2 with
// RWF_NOWAIT answers EAGAIN instead of reading from the disk. Anything else (an old kernel or a
// file system without it) counts as resident, i.e. plain sendfile as before.
bool resident(int fd, off_t off, std::uint64_t len) {
    char b;
    for (off_t at : {off, off + off_t(len) - 1}) {
        iovec v{&b, 1};
        ssize_t n = ::preadv2(fd, &v, 1, at, RWF_NOWAIT);
        if (n < 0 && errno == EAGAIN) return false;
    }
    return true;
}
constexpr int kRoundsPerPump = 64;  // process/flush rounds per event
}  // namespace

Conn::Conn(ConnHost& host, int fd, Port port) : host_(host), fd_(fd), port_(port) {
    head_timer.owner = this;
    idle_timer.owner = this;
}

Conn::~Conn() {
    in_.release(host_.pool);
    out_.release(host_.pool);
}

bool Conn::wants_input() const {
    return !closing_ && !output_pending();
}

void Conn::on_event(std::uint32_t events) {
    if (dead_) return;
    if (events & EPOLLERR) {
        close_now();
        return;
    }
    if (lingering_) {
        // Discard whatever the peer still sends until it closes or the deadline passes.
        char sink[4096];
        for (int i = 0; i < kReadsPerEvent; ++i) {
            ssize_t n = ::read(fd_.get(), sink, sizeof sink);
            if (n > 0) continue;
            if (n < 0 && errno == EAGAIN) return;
            close_now();
            return;
        }
        return;
    }
    if (events & EPOLLOUT) {
        if (flush() && !closing_) pump();  // output drained: pipelined input may continue
    }
    if (dead_) return;
    if (events & (EPOLLIN | EPOLLHUP)) read_input();
    if (dead_) return;
    if (closing_ && !output_pending()) {
        finish_close();
        return;
    }
    update_interest();
    if (host_.draining_conns() && is_idle()) on_quiet();
}

void Conn::read_input() {
    if (throttled_) return;
    // A parked connection reads nothing more: its request waits, and level-triggered EPOLLIN on
    // a full buffer would spin the loop.
    for (int i = 0; i < kReadsPerEvent && !dead_ && !parked_ && wants_input(); ++i) {
        in_.acquire(host_.pool);
        if (in_.room() == 0) in_.compact();
        if (in_.room() == 0) break;  // the protocol must consume before we read again
        // recv/send rather than read/writev: the socket calls skip the VFS layers on every request.
        ssize_t n = ::recv(fd_.get(), in_.tail(), in_.room(), 0);
        if (n > 0) {
            in_.commit(static_cast<std::size_t>(n));
            host_.metrics.bytes_in += static_cast<std::uint64_t>(n);
            touch_progress();
            pump();
            if (static_cast<std::size_t>(n) < 4096) break;  // likely drained the socket
            continue;
        }
        if (n == 0) {
            on_eof();
            if (!dead_) pump();
            return;
        }
        if (errno == EAGAIN || errno == EINTR) break;
        close_now();
        return;
    }
    if (!dead_ && in_.empty() && !closing_) in_.release(host_.pool);
}

void Conn::pump_now() {
    pump();
    update_interest();
    if (!dead_ && !lingering_ && host_.draining_conns() && is_idle()) on_quiet();
}

void Conn::pump() {
    // Alternate processing and writing until neither makes progress: this answers a batch of
    // pipelined requests with one write, and resumes parsing once a long response has gone out.
    int round = 0;
    for (; round < kRoundsPerPump && !dead_; ++round) {
        bool progressed = !closing_ && !throttled_ && process();
        if (dead_) return;
        if (!output_pending()) {
            if (!progressed) break;
            continue;
        }
        if (!flush() || !progressed) break;
    }
    if (dead_) return;
    // Out of rounds with work left (many pipelined downloads, or a LIST of megabytes with no
    // input at all): ask for EPOLLOUT, which is ready at once, so the loop comes back here after
    // serving everyone else. Without it a long LIST stalled after 64 rounds of 32 KiB.
    if (round == kRoundsPerPump && !closing_ && !throttled_) want_out_ = true;
    if (closing_ && !output_pending()) finish_close();
}

void Conn::wait_writable() {
    want_out_ = true;
    update_interest();
}

void Conn::write_blocked_or_failed() {
    if (errno == EAGAIN)
        wait_writable();
    else
        close_now();  // the peer is gone (EPIPE, ECONNRESET, ...)
}

void Conn::refill(std::size_t& turn) {
    std::size_t allow = std::min(turn, host_.output_budget());
    if (allow == 0) return;
    out_.acquire(host_.pool);
    if (!out_.data) return;
    out_.compact();
    std::size_t n = source_->fill(out_.tail(), std::min({out_.room(), allow, kSourceChunk}));
    out_.commit(n);
    turn -= std::min(turn, n);
    host_.spend_output(n);
    if (source_->done()) source_.reset();
}

bool Conn::flush() {
    std::size_t extra_turn = kExtraPerEvent;
    std::uint64_t budget = kSendfilePerEvent;
    for (;;) {  // out_/extra_, then a file range; a source may hand over file ranges in turn
        for (;;) {
            // A body rendered as the client reads: the next buffer's worth once the last one is out
            // (out_ holds at most what was queued before it, which goes first).
            // (Not while a file range the source handed over is still going out: its bytes first.)
            if (source_ && !source_held_ && file_left_ == 0 && out_.size() < 4096)
                refill(extra_turn);
            if (out_.empty() && !extra_) {
                if (!source_ || file_left_ > 0) break;
                if (source_->failed()) {  // the promised length cannot be kept: cut (README)
                    close_now();
                    return false;
                }
                if (file_left_ == 0 && !source_held_ &&
                    source_->take_file(file_, file_off_, file_left_)) {
                    resident_until_ = std::uint64_t(file_off_);
                    break;
                }
                if (source_->failed()) {
                    close_now();
                    return false;
                }
                // Held: its rest is being written ahead for a reload, and source_prepared() pumps
                // again; waiting for EPOLLOUT meanwhile would spin the loop.
                if (source_held_) {
                    want_out_ = false;
                    return false;
                }
                wait_writable();  // this event's share is spent: more after the others had theirs
                return false;
            }
            iovec iov[2];
            int n_iov = 0;
            if (!out_.empty()) iov[n_iov++] = {const_cast<char*>(out_.head()), out_.size()};
            if (extra_) {
                // Long bodies go in turns, within the step's budget shared by all connections.
                std::size_t left = extra_->size() - extra_sent_;
                std::size_t allow = std::min({left, extra_turn, host_.output_budget()});
                if (allow == 0 && n_iov == 0) {
                    wait_writable();
                    return false;
                }
                if (allow > 0)
                    iov[n_iov++] = {const_cast<char*>(extra_->data()) + extra_sent_, allow};
            }
            ssize_t n = n_iov == 1 ? ::send(fd_.get(), iov[0].iov_base, iov[0].iov_len, 0)
                                   : ::writev(fd_.get(), iov, n_iov);
            if (n < 0) {
                if (errno == EINTR) continue;
                write_blocked_or_failed();
                return false;
            }
            host_.metrics.bytes_out += static_cast<std::uint64_t>(n);
            touch_progress();
            std::size_t left = static_cast<std::size_t>(n);
            std::size_t from_out = left < out_.size() ? left : out_.size();
            out_.consume(from_out);
            left -= from_out;
            host_.spend_output(left);
            extra_turn -= std::min(extra_turn, left);
            if (extra_ && left) {
                extra_sent_ += static_cast<std::uint32_t>(left);
                if (extra_sent_ == extra_->size()) {
                    extra_.reset();
                    extra_sent_ = 0;
                }
            }
        }
        while (file_left_ > 0) {
            if (budget == 0) {
                wait_writable();  // more next time round, after others had their turn
                return false;
            }
            std::size_t want = file_left_ < budget ? std::size_t(file_left_) : std::size_t(budget);
            want = std::min(want, host_.output_budget());
            if (want == 0) {
                wait_writable();  // the step's budget is spent: on with the next step
                return false;
            }
            if (std::uint64_t(file_off_) + want > resident_until_) {
                // README "Limits": a cold page would make sendfile wait for the disk on the loop. A
                // helper reads the window into the page cache meanwhile; the connection parks until
                // then.
                if (disk_wait_ || !resident(file_.get(), file_off_, want)) {
                    if (!disk_wait_) {
                        disk_wait_ = true;
                        host_.read_ahead(this, file_.get(), file_off_, kSendfilePerEvent);
                    }
                    want_out_ = false;
                    host_.park(this);
                    return false;
                }
                resident_until_ = std::uint64_t(file_off_) + want;
            }
            ssize_t n = ::sendfile(fd_.get(), file_.get(), &file_off_, want);
            if (n < 0) {
                if (errno == EINTR) continue;
                write_blocked_or_failed();
                return false;
            }
            if (n == 0) {  // the file shrank under us: the promised length cannot be kept
                close_now();
                return false;
            }
            file_left_ -= static_cast<std::uint64_t>(n);
            budget -= static_cast<std::uint64_t>(n);
            host_.spend_output(std::size_t(n));
            host_.metrics.bytes_out += static_cast<std::uint64_t>(n);
            host_.metrics.download_bytes += static_cast<std::uint64_t>(n);
            touch_progress();
        }
        if (file_.valid()) file_.reset();
        if (source_ && !dead_) continue;  // the source goes on after its file range
        break;
    }
    want_out_ = false;
    if (out_.empty()) out_.release(host_.pool);
    return true;
}

bool Conn::queue(const char* p, std::size_t n) {
    if (n == 0) return true;  // an empty view may carry a null pointer, which memcpy must not see
    out_.acquire(host_.pool);
    return out_.append(p, n);
}

void Conn::queue_extra(std::string body) {
    if (body.empty()) return;
    if (out_room() >= body.size() && queue(body)) return;
    extra_ = std::make_shared<const std::string>(std::move(body));
    extra_sent_ = 0;
}

void Conn::queue_shared(std::shared_ptr<const std::string> body, std::size_t offset) {
    if (!body || offset >= body->size()) return;
    extra_ = std::move(body);
    extra_sent_ = static_cast<std::uint32_t>(offset);
}

void Conn::queue_source(std::unique_ptr<BodySource> source) {
    if (source && !source->done()) source_ = std::move(source);
}

BodySource* Conn::hold_source() {
    if (!source_ || dead_) return nullptr;
    // A folder's tar is not written ahead: it crosses the reload as its state (Conn::hand_over).
    if (!source_->can_write_ahead()) return nullptr;
    source_held_ = true;
    return source_.get();
}

void Conn::source_prepared(RestWriter& w) {
    source_held_ = false;
    source_.reset();
    if (w.failed()) {
        close_now();  // a body of the promised length cannot be had: the client sees it cut
        return;
    }
    // source_ was the last thing queued, so nothing is behind it: the rest simply follows.
    std::uint64_t size = 0;
    if (Fd mem = w.take_file(size)) {
        queue_file(std::move(mem), 0, size);
    } else if (std::string rest = w.take_bytes(); !rest.empty()) {
        if (extra_) rest.insert(0, std::string_view(*extra_).substr(extra_sent_));
        queue_shared(std::make_shared<const std::string>(std::move(rest)));
    }
    pump_now();
}

void Conn::queue_file(Fd file, off_t offset, std::uint64_t length) {
    if (length == 0) return;
    resident_until_ = 0;
    file_ = std::move(file);
    file_off_ = offset;
    file_left_ = length;
}

std::string Conn::peer_address() const {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    char addr[INET6_ADDRSTRLEN] = "-";
    if (getpeername(fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
        if (ss.ss_family == AF_INET) {
            unsigned char a[4];
            std::memcpy(a, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, 4);
            return format_ipv4(a);
        }
        if (ss.ss_family == AF_INET6)
            inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, addr,
                      sizeof addr);
    }
    return addr;
}

void Conn::touch_progress() {
    host_.idle_timers.touch(idle_timer, host_.now_ms());
}

void Conn::arm_header_timer() {
    if (!head_timer.linked()) host_.header_timers.touch(head_timer, host_.now_ms());
}

void Conn::cancel_header_timer() {
    TimerList::cancel(head_timer);
}

void Conn::on_idle_timeout() {
    close_now();
}

AuthAddr Conn::peer_key() const {
    AuthAddr a;
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getpeername(fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) return a;
    if (ss.ss_family == AF_INET) {
        a.bytes[10] = a.bytes[11] = 0xff;  // IPv4-mapped: one table for both families
        std::memcpy(&a.bytes[12], &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, 4);
    } else if (ss.ss_family == AF_INET6) {
        std::memcpy(a.bytes.data(), &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, 16);
    }
    return a;
}

bool Conn::auth_attempt_must_wait() {
    if (throttle_cleared_) {
        throttle_cleared_ = false;  // this attempt has had its wait
        return false;
    }
    std::int64_t now = host_.now_ms();
    std::int64_t at = host_.throttle.admit(peer_key(), now);
    if (at <= now) return false;
    ++host_.metrics.auth_throttled;
    throttled_ = true;
    cancel_header_timer();
    host_.throttle_timers.insert_at(head_timer, at);
    return true;
}

bool Conn::auth_result(bool ok) {
    AuthAddr a = peer_key();
    if (ok) {
        host_.throttle.success(a);
        auth_failures_ = 0;
        return false;
    }
    ++host_.metrics.auth_failures;
    host_.throttle.failure(a, host_.now_ms());
    if (auth_failures_ < 255) ++auth_failures_;
    return auth_failures_ >= AuthThrottle::kCloseAfter;
}

void Conn::on_throttle_release() {
    if (dead_) return;
    throttled_ = false;
    throttle_cleared_ = true;
    touch_progress();
    pump_now();
}

void Conn::update_interest() {
    if (dead_) return;
    std::uint32_t want = 0;
    if (lingering_ || (!throttled_ && !parked_ && wants_input())) want |= EPOLLIN;
    if (want_out_) want |= EPOLLOUT;
    if (want == interest_) return;
    interest_ = want;
    host_.loop.modify(fd_.get(), want, this);
}

void Conn::finish_close() {
    // Half-close and read what is left for a moment, so that unread request bytes do not turn our
    // last answer into a connection reset on the client's side (RFC 9112 §9.6).
    int unread = 0;
    if (in_.empty() && !linger_hint_ && ioctl(fd_.get(), FIONREAD, &unread) == 0 && unread == 0) {
        close_now();
        return;
    }
    start_lingering();
}

void Conn::start_lingering() {
    if (::shutdown(fd_.get(), SHUT_WR) != 0) {
        close_now();
        return;
    }
    lingering_ = true;
    in_.release(host_.pool);
    out_.release(host_.pool);
    cancel_header_timer();
    TimerList::cancel(idle_timer);
    host_.linger_timers.touch(head_timer, host_.now_ms());
    update_interest();
}

void Conn::close_now() {
    if (dead_) return;
    dead_ = true;
    cancel_header_timer();
    TimerList::cancel(idle_timer);
    host_.loop.remove(fd_.get());
    fd_.reset();
    file_.reset();
    extra_.reset();
    source_.reset();
    in_.release(host_.pool);
    out_.release(host_.pool);
    host_.conn_closed(this);
}

int Conn::release_for_handover() {
    int fd = fd_.get();
    host_.loop.remove(fd);
    dead_ = true;
    cancel_header_timer();
    TimerList::cancel(idle_timer);
    host_.conn_closed(this);
    return fd_.release();
}

}  // namespace duet
