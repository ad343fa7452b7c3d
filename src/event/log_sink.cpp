// Non-blocking stdout/stderr with a bounded buffer per stream. See log_sink.hpp.
#include "duet/event/log_sink.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace duet {

LogSink::~LogSink() {
    detach();
}

void LogSink::attach(Loop& loop) {
    loop_ = &loop;
    struct stat st;
    if (::fstat(target_, &st) != 0) {
        broken_ = true;  // nothing to write to
        return;
    }
    if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) {
        out_ = target_;  // writes land in the page cache; O_NONBLOCK would not change them
        return;
    }
    if (S_ISSOCK(st.st_mode)) {
        out_ = target_;
        is_socket_ = true;
        return;
    }
    // A pipe or a terminal: our own description of it, so O_NONBLOCK stays ours.
    // (std::to_string, not snprintf: libc's formatting pages would count in an idle duet's RSS.)
    std::string path = "/proc/self/fd/" + std::to_string(target_);
    own_.reset(::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
    if (own_) {
        out_ = own_.get();
        return;
    }
    int fl = ::fcntl(target_, F_GETFL);
    if (fl >= 0 && !(fl & O_NONBLOCK) && ::fcntl(target_, F_SETFL, fl | O_NONBLOCK) == 0)
        shared_nonblock_ = true;
    out_ = target_;
}

void LogSink::detach() {
    if (loop_ && registered_ && out_ >= 0) loop_->remove(out_);
    registered_ = false;
    if (shared_nonblock_) {
        int fl = ::fcntl(target_, F_GETFL);
        if (fl >= 0) ::fcntl(target_, F_SETFL, fl & ~O_NONBLOCK);
        shared_nonblock_ = false;
    }
    if (loop_) flush();  // one last try, without blocking on our own description
    own_.reset();
    out_ = -1;
    loop_ = nullptr;
}

ssize_t LogSink::raw_write(const char* p, std::size_t n) {
    if (is_socket_) return ::send(out_, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    return ::write(out_, p, n);
}

void LogSink::line(std::string_view text) {
    if (!loop_) {  // start-up or after detach(): plain blocking output
        std::string s(text);
        s += '\n';
        std::size_t off = 0;
        while (off < s.size()) {
            ssize_t n = ::write(target_, s.data() + off, s.size() - off);
            if (n <= 0 && errno != EINTR) return;
            if (n > 0) off += std::size_t(n);
        }
        return;
    }
    if (broken_) return;
    if (pending() + text.size() + 1 > kLimit) {
        ++dropped_total_;
        ++dropped_unreported_;
        return;
    }
    if (sent_ == buf_.size()) {
        buf_.clear();
        sent_ = 0;
    }
    buf_.append(text);
    buf_ += '\n';
    if (!registered_) flush();
}

void LogSink::flush() {
    for (;;) {
        while (sent_ < buf_.size()) {
            ssize_t n = raw_write(buf_.data() + sent_, buf_.size() - sent_);
            if (n > 0) {
                sent_ += std::size_t(n);
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EAGAIN) {
                // Compact so the buffer's memory stays bounded by kLimit.
                if (sent_ > kLimit / 2) {
                    buf_.erase(0, sent_);
                    sent_ = 0;
                }
                want_writable(true);
                return;
            }
            broken_ = true;  // EPIPE and friends: nobody will ever read these lines
            buf_.clear();
            buf_.shrink_to_fit();
            sent_ = 0;
            want_writable(false);
            return;
        }
        buf_.clear();
        sent_ = 0;
        if (buf_.capacity() > 64 * 1024) buf_.shrink_to_fit();
        if (dropped_unreported_ == 0) break;
        char note[96];
        std::snprintf(note, sizeof note, "duet: %llu log lines dropped\n",
                      static_cast<unsigned long long>(dropped_unreported_));
        dropped_unreported_ = 0;
        buf_ = note;
    }
    want_writable(false);
}

void LogSink::want_writable(bool on) {
    if (!loop_ || on == registered_) return;
    if (on) {
        if (loop_->add(out_, EPOLLOUT, this) == 0) registered_ = true;
        // A regular file cannot be polled (EPERM); it never says EAGAIN either.
    } else {
        loop_->remove(out_);
        registered_ = false;
    }
}

void LogSink::on_event(std::uint32_t events) {
    if (events & (EPOLLERR | EPOLLHUP)) {
        broken_ = true;
        buf_.clear();
        sent_ = 0;
        want_writable(false);
        return;
    }
    flush();
}

}  // namespace duet
