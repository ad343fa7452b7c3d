// StoreIndex on its own, with no server: a real loop, helper threads and store on a temporary
// directory, and the index's hooks (wake, log, streams on hold) recorded by the test. The first
// build, digests computed on helpers, duet's own publishes and removals, changes seen through
// inotify, and listings rendered from the index.
#include <criterion/criterion.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "duet/core/logger.hpp"
#include "duet/core/sha256.hpp"
#include "duet/event/helpers.hpp"
#include "duet/event/loop.hpp"
#include "duet/store/store.hpp"
#include "duet/store/store_index.hpp"

using namespace duet;

namespace {

std::string g_dir;

void make_dir() {
    char d[] = "/tmp/duet-index-XXXXXX";
    cr_assert(::mkdtemp(d));
    g_dir = d;
}

void remove_dir() {
    std::error_code ec;
    std::filesystem::remove_all(g_dir, ec);
}

void write_file(const std::string& name, const std::string& data) {
    std::string path = g_dir + "/" + name;
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert(fd >= 0, "open %s: %s", path.c_str(), std::strerror(errno));
    cr_assert_eq(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    ::close(fd);
}

struct stat stat_of(const std::string& name) {
    struct stat st {};
    cr_assert_eq(::stat((g_dir + "/" + name).c_str(), &st), 0, "%s", name.c_str());
    return st;
}

// An index with everything it needs and nothing else. Members are destroyed in reverse order:
// the helpers (declared last) are joined before the index and store their jobs refer to.
struct Rig final : Logger {
    Loop loop;
    Store store;
    int wakes = 0;
    bool hold = false;
    std::vector<std::string> lines;
    StoreIndex index{{loop, helpers, store, *this, [this] { ++wakes; }, [this] { return hold; }}};
    Helpers helpers;

    void vlog(const char* fmt, va_list ap) override {
        char buf[512];
        std::vsnprintf(buf, sizeof buf, fmt, ap);
        lines.emplace_back(buf);
    }

    void start() {
        cr_assert_eq(loop.init(), 0);
        cr_assert_eq(helpers.start(loop, 2), 0);
        store.set_index(&index);
        store.use_helpers(helpers, [this] { ++wakes; });
        std::string err;
        cr_assert(store.open(g_dir, err), "%s", err.c_str());
        index.start();
    }

    // Runs the loop as the server does (events, then a slice of listing work) until `done`
    // holds, for at most 10 s. Returns whether it did.
    bool run_until(const std::function<bool()>& done) {
        for (int i = 0; i < 1000; ++i) {
            if (done()) return true;
            if (loop.wait(index.has_work() ? 0 : 10) > 0) loop.dispatch();
            if (index.has_work()) index.run_slice(1000000);
        }
        return done();
    }
};

}  // namespace

TestSuite(store_index, .init = make_dir, .fini = remove_dir);

Test(store_index, first_build_lists_regular_files_with_valid_names_only) {
    write_file("a.txt", "abc");
    write_file("b.bin", "hello");
    write_file(".hidden", "not listed");
    std::filesystem::create_directory(g_dir + "/sub");
    Rig r;
    r.start();
    cr_assert(r.run_until([&] { return r.index.built(); }), "the first build never finished");
    cr_expect_eq(r.index.files(), 2u);
    cr_expect_eq(r.index.bytes(), 8u);
    cr_expect(r.index.holds("a.txt") && r.index.holds("b.bin"));
    cr_expect(!r.index.holds(".hidden") && !r.index.holds("sub"));
}

Test(store_index, digests_are_computed_on_helpers_and_wake_the_waiters) {
    std::string big(6u << 20, 'x');
    for (std::size_t i = 0; i < big.size(); i += 4096) big[i] = char(i / 4096);
    write_file("big.bin", big);
    Rig r;
    r.start();
    struct stat st = stat_of("big.bin");
    Digest d{};
    int rc = r.index.digest_for("big.bin", st, d);
    cr_expect(rc == 0 || rc == -EINPROGRESS, "digest_for: %d", rc);
    int wakes_before = r.wakes;
    cr_assert(r.run_until([&] { return r.index.digest_for("big.bin", st, d) == 0; }),
              "the digest never arrived");
    cr_expect(r.wakes > wakes_before || rc == 0, "nobody was woken when the digest arrived");
    cr_expect_eq(to_hex(d), to_hex(Sha256::of(big)));
    cr_expect_eq(r.index.pending(), 0u);
}

Test(store_index, duet_own_publishes_and_removals_update_the_totals) {
    write_file("a.txt", "abc");
    Rig r;
    r.start();
    cr_assert(r.run_until([&] { return r.index.built(); }));
    write_file("c.txt", "12345678");
    struct stat st = stat_of("c.txt");
    r.index.published("c.txt", st, Sha256::of(std::string("12345678")));
    cr_expect(r.index.holds("c.txt"));
    cr_expect_eq(r.index.files(), 2u);
    cr_expect_eq(r.index.bytes(), 11u);
    Digest d{};
    cr_expect_eq(r.index.digest_for("c.txt", st, d), 0, "a published digest is known at once");
    cr_expect_eq(to_hex(d), to_hex(Sha256::of(std::string("12345678"))));
    r.index.removed("a.txt");
    cr_expect(!r.index.holds("a.txt"));
    cr_expect_eq(r.index.files(), 1u);
    cr_expect_eq(r.index.bytes(), 8u);
}

Test(store_index, changes_made_by_others_are_seen_through_inotify) {
    Rig r;
    r.start();
    cr_assert(r.run_until([&] { return r.index.built(); }));
    cr_expect_eq(r.index.files(), 0u);
    write_file("dropped.txt", "from outside");
    cr_assert(r.run_until([&] { return r.index.holds("dropped.txt"); }),
              "a file written into the store was never indexed");
    cr_expect_eq(r.index.bytes(), 12u);
    cr_assert_eq(::unlink((g_dir + "/dropped.txt").c_str()), 0);
    cr_assert(r.run_until([&] { return !r.index.holds("dropped.txt"); }),
              "a file removed from the store stayed in the index");
    cr_expect_eq(r.index.files(), 0u);
}

Test(store_index, a_listing_names_every_file_with_its_size_and_digest) {
    write_file("one.txt", "1");
    write_file("two.txt", "22");
    Rig r;
    r.start();
    std::shared_ptr<const std::string> body;
    std::unique_ptr<ListingStream> stream;
    std::uint64_t count = 0, length = 0;
    cr_assert(r.run_until([&] { return r.index.listing(true, body, stream, count, length); }),
              "the listing was never ready");
    cr_assert(body, "a small store's listing is one shared body");
    cr_expect_eq(length, body->size());
    cr_expect(body->find("\"name\":\"one.txt\"") != std::string::npos, "%s", body->c_str());
    cr_expect(body->find("\"name\":\"two.txt\"") != std::string::npos, "%s", body->c_str());
    cr_expect(body->find(to_hex(Sha256::of(std::string("22")))) != std::string::npos, "%s",
              body->c_str());
    // The text form (the file port's LIST) has one line per file.
    std::shared_ptr<const std::string> text;
    cr_assert(r.run_until([&] { return r.index.listing(false, text, stream, count, length); }));
    cr_assert(text);
    cr_expect_eq(count, 2u);
    cr_expect(
        text->find("one.txt") != std::string::npos && text->find("two.txt") != std::string::npos,
        "%s", text->c_str());
}
