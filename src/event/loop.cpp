#include "duet/event/loop.hpp"

#include <cerrno>

namespace duet {

int Loop::init() {
    ep_.reset(epoll_create1(EPOLL_CLOEXEC));
    return ep_ ? 0 : -errno;
}

static int ctl(int ep, int op, int fd, std::uint32_t events, Handler* h) {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = h;
    return epoll_ctl(ep, op, fd, &ev) == 0 ? 0 : -errno;
}

int Loop::add(int fd, std::uint32_t events, Handler* h) {
    return ctl(ep_.get(), EPOLL_CTL_ADD, fd, events, h);
}

int Loop::modify(int fd, std::uint32_t events, Handler* h) {
    return ctl(ep_.get(), EPOLL_CTL_MOD, fd, events, h);
}

int Loop::remove(int fd) {
    return ctl(ep_.get(), EPOLL_CTL_DEL, fd, 0, nullptr);
}

int Loop::wait(int timeout_ms) {
    ready_ = 0;
    int n = epoll_wait(ep_.get(), events_, 256, timeout_ms);
    if (n < 0) return errno == EINTR ? 0 : -errno;
    ready_ = n;
    return n;
}

void Loop::dispatch() {
    // Handlers closed during this batch are only marked; their owner frees them afterwards, so a
    // later event in the same batch never touches freed memory.
    for (int i = 0; i < ready_; ++i)
        static_cast<Handler*>(events_[i].data.ptr)->on_event(events_[i].events);
    ready_ = 0;
}

}  // namespace duet
