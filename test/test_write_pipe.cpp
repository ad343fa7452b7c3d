// Unit tests for WritePipe (include/duet/store/write_pipe.hpp): an upload's bytes written and
// hashed in order, on helpers or in place; the hash matches the file; backpressure, the final
// fsync, errors and abandon behave as the header says.
#include <criterion/criterion.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "duet/core/sha256.hpp"
#include "duet/event/helpers.hpp"
#include "duet/event/loop.hpp"
#include "duet/store/write_pipe.hpp"
#include "helper.hpp"

using namespace duet;

namespace {

std::string g_dir;

void setup() {
    g_dir = t::make_tmpdir();
    cr_assert(!g_dir.empty());
}

void teardown() {
    t::sh("rm -rf '" + g_dir + "'");
}

Fd open_file(const char* name, int flags = O_RDWR | O_CREAT | O_TRUNC) {
    Fd fd(::open((g_dir + "/" + name).c_str(), flags | O_CLOEXEC, 0644));
    cr_assert(fd.valid());
    return fd;
}

Digest sha_of(const std::string& s) {
    Sha256 h;
    h.update(s.data(), s.size());
    return h.finish();
}

Digest finish(Sha256 h) {
    return h.finish();
}

// Feeds `data` in uneven pieces, as a socket would.
void feed(WritePipe& pipe, const std::string& data) {
    std::size_t at = 0, step = 1;
    while (at < data.size()) {
        std::size_t n = std::min(data.size() - at, step);
        cr_assert_eq(pipe.write(data.data() + at, n), 0);
        at += n;
        step = step * 7 % 300007 + 1;
    }
}

// A loop with two helpers, as the server has.
struct Helped {
    Loop loop;
    Helpers helpers;
    int wakes = 0;
    Helped() {
        cr_assert_eq(loop.init(), 0);
        cr_assert_eq(helpers.start(loop, 2), 0);
        helpers.set_on_nudge([this] { ++wakes; });
    }
    WritePipe::Runner runner() {
        return {&helpers, [this] { ++wakes; }};
    }
    void run_until(const DiskWait& w) {
        for (int i = 0; i < 5000 && !w.done; ++i)
            if (loop.wait(10) > 0) loop.dispatch();
        cr_assert(w.done, "the pipe never finished");
    }
};

}  // namespace

TestSuite(write_pipe, .init = setup, .fini = teardown, .timeout = 30);

Test(write_pipe, in_place_the_file_and_the_hash_are_the_bytes_in_order) {
    const std::string data = t::random_bytes(3 * WritePipe::kBufferBytes + 12345, 1);
    WritePipe pipe;
    Sha256 start;
    pipe.open({}, open_file("a"), 0, start, nullptr, 1 << 20);
    feed(pipe, data);
    cr_assert(pipe.idle());
    cr_assert_eq(pipe.error(), 0);
    cr_assert_eq(pipe.offset(), data.size());
    cr_assert(finish(pipe.sha()) == sha_of(data));
    Fd back = pipe.take_file();
    cr_assert(back.valid());
    cr_assert(!pipe.active());
    cr_assert(t::read_file(g_dir + "/a") == data);
}

Test(write_pipe, on_helpers_it_continues_a_file_and_both_hashes_and_fsyncs_at_the_end) {
    Helped h;
    const std::string head = "already there: ";
    const std::string data = t::random_bytes(9 * WritePipe::kBufferBytes + 777, 2);
    Fd fd = open_file("b");
    cr_assert_eq(::write(fd.get(), head.data(), head.size()), ssize_t(head.size()));
    Sha256 start, extra;
    start.update(head.data(), head.size());
    WritePipe pipe;
    pipe.open(h.runner(), std::move(fd), head.size(), start, &extra, 1 << 20);
    feed(pipe, data);
    std::shared_ptr<DiskWait> w = pipe.finish(true);
    h.run_until(*w);
    cr_assert_eq(w->rc, 0);
    cr_assert(pipe.idle());
    cr_assert(finish(pipe.sha()) == sha_of(head + data));
    cr_assert(finish(pipe.extra()) == sha_of(data));
    cr_assert(t::read_file(g_dir + "/b") == head + data);
    cr_assert_gt(h.wakes, 0, "nobody was woken");
}

Test(write_pipe, a_full_pipe_says_backlogged_and_wait_idle_drains_it_beside_the_helpers) {
    Helped h;
    WritePipe pipe;
    pipe.open(h.runner(), open_file("c"), 0, Sha256(), nullptr, 0);
    // More than kDepth buffers in one write: the pipe takes them all, then says stop. The loop
    // then writes what is queued itself while the helpers take buffers too: 50 rounds, so that
    // the two meet; the file must still be the bytes in order.
    std::string all;
    int stopped = 0;
    for (int round = 0; round < 50; ++round) {
        const std::string data =
            t::random_bytes((WritePipe::kDepth + 2) * WritePipe::kBufferBytes + 999, 10 + round);
        cr_assert_eq(pipe.write(data.data(), data.size()), 0);
        all += data;
        stopped += pipe.backlogged();
        // Once a helper has written a buffer, it is in the middle of its job.
        while (pipe.offset() == all.size() - data.size())
            if (h.loop.wait(0) > 0) h.loop.dispatch();  // the last round's job ends here
        pipe.wait_idle();
        cr_assert(!pipe.backlogged());
        cr_assert(pipe.idle());
        cr_assert_eq(pipe.offset(), all.size());
    }
    cr_assert(finish(pipe.sha()) == sha_of(all));
    cr_assert(t::read_file(g_dir + "/c") == all);
    cr_log_info("backlogged right after the write in %d of 50 rounds", stopped);
}

Test(write_pipe, a_write_error_is_reported_and_the_offset_counts_what_was_written) {
    Helped h;
    WritePipe pipe;
    pipe.open(h.runner(), open_file("d", O_RDONLY | O_CREAT), 0, Sha256(), nullptr, 0);
    const std::string data = t::random_bytes(2 * WritePipe::kBufferBytes, 4);
    cr_assert_eq(pipe.write(data.data(), data.size()), 0);  // taken: the error comes later
    pipe.wait_idle();
    cr_assert_eq(pipe.error(), -EBADF);
    cr_assert_eq(pipe.offset(), 0u);
    cr_assert_eq(pipe.write("x", 1), -EBADF, "a pipe that failed takes nothing more");
    std::shared_ptr<DiskWait> w = pipe.finish(true);
    h.run_until(*w);
    cr_assert_eq(w->rc, -EBADF);
}

Test(write_pipe, abandon_stops_every_write_before_it_returns) {
    Helped h;
    WritePipe pipe;
    pipe.open(h.runner(), open_file("e"), 0, Sha256(), nullptr, 0);
    const std::string data = t::random_bytes(16 * WritePipe::kBufferBytes, 5);
    cr_assert_eq(pipe.write(data.data(), data.size()), 0);
    pipe.abandon(true);
    struct stat st;
    cr_assert_eq(::stat((g_dir + "/e").c_str(), &st), 0);
    off_t size = st.st_size;
    // Every job the pipe submitted runs to its end: none may write any more.
    for (int i = 0; i < 5000 && h.helpers.in_flight() > 0; ++i)
        if (h.loop.wait(10) > 0) h.loop.dispatch();
    cr_assert_eq(h.helpers.in_flight(), 0u);
    cr_assert_eq(::stat((g_dir + "/e").c_str(), &st), 0);
    cr_assert_eq(st.st_size, size, "written after abandon");
}
