// RestWriter (rest_writer.hpp): a streamed body's rest written ahead for a reload, a turn at a
// time. Into a memory file; without one (or when it fills up midway, read back in turns) into
// memory; nothing lost, doubled or reordered; bounded work per step; a source that stops short
// is reported, never padded.
#include <criterion/criterion.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <string>

#include "duet/net/conn.hpp"
#include "duet/net/rest_writer.hpp"

using namespace duet;

namespace {

// A body of `size` bytes (a pattern that shows any byte out of place) handed out at most
// `piece` bytes per fill; `stop_at` makes it stop short there (fill returns 0 without done).
class Pattern final : public BodySource {
  public:
    Pattern(std::size_t size, std::size_t piece, std::size_t stop_at = std::string::npos)
        : size_(size), piece_(piece), stop_at_(stop_at) {}
    std::size_t fill(char* p, std::size_t room) override {
        std::size_t n = std::min({room, piece_, size_ - at_});
        if (at_ >= stop_at_) return 0;
        for (std::size_t i = 0; i < n; ++i) p[i] = byte(at_ + i);
        at_ += n;
        return n;
    }
    bool done() const override { return at_ == size_; }
    static char byte(std::size_t i) { return char('a' + (i * 7 + i / 251) % 26); }
    std::string whole() const {
        std::string s(size_, 0);
        for (std::size_t i = 0; i < size_; ++i) s[i] = byte(i);
        return s;
    }

  private:
    std::size_t size_, piece_, stop_at_, at_ = 0;
};

// Runs the writer in steps of `per_step` bytes; returns the rest it produced (file or bytes) and
// how many steps it took.
std::string run(RestWriter& w, std::size_t per_step, int& steps, bool& as_file) {
    steps = 0;
    while (!w.step(per_step)) ++steps;
    ++steps;
    std::uint64_t size = 0;
    Fd f = w.take_file(size);
    as_file = f.valid();
    if (!as_file) return w.take_bytes();
    std::string s(size, 0);
    cr_assert_eq(pread(f.get(), s.data(), s.size(), 0), ssize_t(size));
    return s;
}

void fini() {
    unsetenv("DUET_TEST_LISTING_MEMFD");
}

}  // namespace

TestSuite(rest_writer, .fini = fini);

Test(rest_writer, the_rest_goes_into_a_memory_file_a_turn_per_step) {
    Pattern src(1000000, 16 << 10);
    RestWriter w(src);
    int steps = 0;
    bool as_file = false;
    std::string got = run(w, RestWriter::kChunk, steps, as_file);
    cr_assert(as_file);
    cr_assert(got == src.whole());
    cr_assert_eq(w.memfd_error(), 0);
    cr_assert(!w.failed());
    // One 64 KiB turn per step: 1,000,000 bytes take 16 steps, not one.
    cr_assert_eq(steps, 16, "%d steps", steps);
}

Test(rest_writer, without_a_memory_file_the_rest_goes_into_memory) {
    setenv("DUET_TEST_LISTING_MEMFD", "0", 1);
    Pattern src(300000, 16 << 10);
    RestWriter w(src);
    int steps = 0;
    bool as_file = true;
    std::string got = run(w, RestWriter::kChunk, steps, as_file);
    cr_assert(!as_file);
    cr_assert(got == src.whole());
    cr_assert_neq(w.memfd_error(), 0);
    cr_assert_gt(steps, 1);
}

Test(rest_writer, a_memory_file_that_fills_up_midway_is_read_back_in_turns) {
    // Fills up in the middle of a turn: the part it refused must follow what it held.
    setenv("DUET_TEST_LISTING_MEMFD", "200001", 1);
    Pattern src(700000, 10000);
    RestWriter w(src);
    int steps = 0;
    bool as_file = true;
    std::string got = run(w, RestWriter::kChunk, steps, as_file);
    cr_assert(!as_file);
    cr_assert_eq(got.size(), 700000u);
    cr_assert(got == src.whole(), "bytes lost or out of order");
    cr_assert_eq(w.memfd_error(), ENOSPC);
    // 200,001 bytes written, read back and 500,000 more: each step a turn, ~15 in all.
    cr_assert_gt(steps, 10, "%d steps", steps);
}

Test(rest_writer, a_source_that_stops_short_is_a_failure_not_a_short_rest) {
    Pattern src(500000, 16 << 10, 100000);
    RestWriter w(src);
    while (!w.step(~std::size_t(0))) {
    }
    cr_assert(w.failed());
}

Test(rest_writer, an_empty_rest_is_finished_at_once) {
    Pattern src(0, 16);
    RestWriter w(src);
    cr_assert(w.finished());
    std::uint64_t size = 1;
    cr_assert(!w.take_file(size).valid());
    cr_assert_eq(size, 0u);
    cr_assert(w.take_bytes().empty());
}
