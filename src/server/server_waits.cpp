// Connections that wait: parked on the store index, a helper or the guessing throttle, and woken
// to run their request again from the start; cold downloads read ahead into the page cache on a
// helper while their connection waits.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <memory>
#include <vector>

#include "duet/core/clock.hpp"
#include "duet/fileport/file_conn.hpp"
#include "duet/http/http_conn.hpp"
#include "duet/server/server.hpp"

namespace duet {
namespace {

constexpr int kReadAheadWindows = 4;  // cold downloads: windows asked for beyond the one read

}  // namespace

void Server::park(Conn* c) {
    if (c->parked()) return;
    c->set_parked(true);
    parked_.push_back(c);
}

void Server::read_ahead(Conn* c, int fd, off_t off, std::size_t len) {
    reading_ahead_.insert(c);
    auto file = std::make_shared<Fd>(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
    auto job = std::make_unique<Helpers::Job>();
    job->work = [file, off, len] {
        if (!*file) return;
        // Blocking reads are fine here: this is what helpers are for. The next windows are only
        // asked for, so the disk keeps a queue of reads while this one is sent.
        ::posix_fadvise(file->get(), off + off_t(len), off_t(len) * kReadAheadWindows,
                        POSIX_FADV_WILLNEED);
        thread_local std::vector<char> buf(256 * 1024);
        for (std::size_t done = 0; done < len;) {
            ssize_t n = ::pread(file->get(), buf.data(), std::min(buf.size(), len - done),
                                off + off_t(done));
            if (n <= 0 && errno == EINTR) continue;
            if (n <= 0) break;
            done += std::size_t(n);
        }
    };
    job->done = [this, c] {
        if (reading_ahead_.erase(c)) c->disk_ready();
        wake_parked();
    };
    helpers.submit(std::move(job), true);
}

void Server::wake_now() {
    wake_due_ = false;
    if (parked_.empty()) return;
    std::vector<Conn*> woken;
    woken.swap(parked_);
    for (Conn* c : woken) {
        if (!c) continue;
        c->set_parked(false);
        if (!c->dead()) c->resume();
    }
}

bool Server::any_publishing() const {
    // A resumable upload's checkpoint on a helper counts too, even one whose connection is gone:
    // the next image must load the state file this one announced.
    if (partials.syncing() > 0) return true;
    // A publish or delete whose rename or unlink is on a helper, even one whose client is gone.
    if (store.mutations_in_flight() > 0) return true;
    for (Conn* c = conns_; c; c = c->next)
        if (c->publishing()) return true;
    return false;
}

}  // namespace duet
