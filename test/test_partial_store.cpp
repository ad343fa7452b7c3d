// The partial-upload store: durable offsets and hash state across a reopen (a restart), publish
// through the store's atomic commit, one append at a time, expiry, leftovers after a crash.
#include <criterion/criterion.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

#include "duet/store/partial_state_file.hpp"
#include "duet/store/partial_store.hpp"

using namespace duet;
namespace fs = std::filesystem;

namespace {

std::string g_dir;

// Without helper threads a checkpoint runs in place: its wait is done on return (or there was
// nothing to make durable).
int sync_rc(const std::shared_ptr<DiskWait>& w) {
    if (!w) return 0;
    cr_assert(w->done, "a checkpoint without helpers is done on return");
    return w->rc;
}

void make_dir() {
    char d[] = "/tmp/duet-partial-XXXXXX";
    cr_assert(::mkdtemp(d));
    g_dir = d;
}

void remove_dir() {
    std::error_code ec;
    fs::remove_all(g_dir, ec);
}

std::string slurp(const std::string& path) {
    std::string out;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return "<missing>";
    char buf[65536];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, std::size_t(n));
    ::close(fd);
    return out;
}

std::string bytes(std::size_t n, char seed) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = char(seed + i * 31 % 251);
    return s;
}

struct Fixture {
    Store store;
    Metrics metrics;
    PartialStore parts;
    void open(std::int64_t ttl = 86400) {
        std::string err;
        cr_assert(store.open(g_dir, err), "%s", err.c_str());
        cr_assert(parts.open(store, metrics, ttl, err), "%s", err.c_str());
    }
};

PartialSpec spec_for(const std::string& name, std::uint64_t length) {
    PartialSpec s;
    s.name = name;
    s.length = length;
    return s;
}

std::size_t entries_in(const std::string& dir) {
    std::size_t n = 0;
    std::error_code ec;
    for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); ++it)
        ++n;
    return n;
}

}  // namespace

TestSuite(partial_store, .init = make_dir, .fini = remove_dir);

Test(partial_store, offset_and_hash_state_survive_a_reopen_and_publish_is_whole) {
    const std::string data = bytes(3 << 20, 7);
    std::string id;
    {
        Fixture f;
        f.open();
        int rc = 0;
        PartialRef p = f.parts.create(spec_for("big.bin", data.size()), rc);
        cr_assert(p, "create: %s", std::strerror(-rc));
        id = p->id;
        cr_expect_eq(id.size(), 32u);
        PartialAppend ap;
        cr_assert_eq(f.parts.begin_append(p, ap), 0);
        cr_assert_eq(ap.write(data.data(), 1234567), 0);
        cr_expect_eq(p->offset, 0u, "an offset is announced before its checkpoint");
        cr_assert_eq(sync_rc(ap.checkpoint()), 0);
        cr_expect_eq(p->offset, 1234567u);
        cr_expect(!fs::exists(g_dir + "/big.bin"), "visible under its name before completion");
    }  // the "server" goes away
    Fixture f;
    f.open();
    PartialRef p = f.parts.find(id);
    cr_assert(p, "the partial did not survive the reopen");
    cr_expect_eq(p->offset, 1234567u);
    cr_expect_eq(p->spec.name, "big.bin");
    cr_expect_eq(p->spec.length, data.size());
    PartialAppend ap;
    cr_assert_eq(f.parts.begin_append(p, ap), 0);
    cr_expect_eq(f.metrics.partials_resumed, 1u);
    cr_assert_eq(ap.write(data.data() + 1234567, data.size() - 1234567), 0);
    cr_assert_eq(ap.finish()->rc, 0);
    FileInfo info;
    bool created = false;
    cr_assert_eq(f.parts.publish(p, info, created), 0);
    cr_expect(created);
    cr_expect(info.sha256 == Sha256::of(data), "the resumed hash state gave a wrong digest");
    cr_expect(slurp(g_dir + "/big.bin") == data);
    cr_expect_eq(entries_in(g_dir + "/.duet-partial"), 0u, "the partial's files stayed");
    cr_expect(!f.parts.find(id));
}

Test(partial_store, bytes_past_the_durable_offset_are_dropped_on_resume) {
    const std::string data = bytes(100000, 3);
    Fixture f;
    f.open();
    int rc = 0;
    PartialRef p = f.parts.create(spec_for("x.bin", data.size()), rc);
    cr_assert(p);
    {
        PartialAppend ap;
        cr_assert_eq(f.parts.begin_append(p, ap), 0);
        cr_assert_eq(ap.write(data.data(), 40000), 0);
    }  // ends: checkpoint at 40000
    // A crash after more bytes were written but before their checkpoint: garbage past it.
    int fd = ::open((g_dir + "/.duet-partial/" + p->id + ".data").c_str(), O_WRONLY | O_APPEND);
    cr_assert(fd >= 0);
    cr_assert_eq(::write(fd, "GARBAGE", 7), 7);
    ::close(fd);
    Fixture g;
    g.open();
    PartialRef q = g.parts.find(p->id);
    cr_assert(q);
    cr_expect_eq(q->offset, 40000u);
    PartialAppend ap;
    cr_assert_eq(g.parts.begin_append(q, ap), 0);
    cr_assert_eq(ap.write(data.data() + 40000, data.size() - 40000), 0);
    cr_assert_eq(ap.finish()->rc, 0);
    FileInfo info;
    bool created = false;
    cr_assert_eq(g.parts.publish(q, info, created), 0);
    cr_expect(slurp(g_dir + "/x.bin") == data);
}

Test(partial_store, one_append_at_a_time) {
    Fixture f;
    f.open();
    int rc = 0;
    PartialRef p = f.parts.create(spec_for("y.bin", 10), rc);
    PartialAppend a, b;
    cr_assert_eq(f.parts.begin_append(p, a), 0);
    cr_expect_eq(f.parts.begin_append(p, b), -EBUSY);
    a.end();
    cr_expect_eq(f.parts.begin_append(p, b), 0);
}

Test(partial_store, a_held_append_rolls_back) {
    Fixture f;
    f.open();
    int rc = 0;
    PartialRef p = f.parts.create(spec_for("z.bin", 10), rc);
    PartialAppend a;
    cr_assert_eq(f.parts.begin_append(p, a), 0);
    cr_assert_eq(a.write("hello", 5), 0);
    a.end();
    PartialAppend b;
    cr_assert_eq(f.parts.begin_append(p, b), 0);
    b.hold();
    cr_assert_eq(b.write("WRONG", 5), 0);
    cr_assert_eq(sync_rc(b.checkpoint()), 0);  // what a HEAD asks of a running append
    cr_expect_eq(p->offset, 5u, "a held append became durable before its end");
    cr_expect(!b.append_digest_is(Sha256::of("world")));
    b.end();
    cr_expect_eq(p->offset, 5u, "a held append was kept");
    PartialAppend c;
    cr_assert_eq(f.parts.begin_append(p, c), 0);
    c.hold();
    cr_assert_eq(c.write("world", 5), 0);
    cr_expect(c.append_digest_is(Sha256::of("world")));
    c.release_hold();
    cr_assert_eq(c.finish()->rc, 0);
    FileInfo info;
    bool created = false;
    cr_assert_eq(f.parts.publish(p, info, created), 0);
    cr_expect_eq(slurp(g_dir + "/z.bin"), "helloworld");
}

Test(partial_store, precondition_and_digest_are_checked_at_publish) {
    Fixture f;
    f.open();
    int rc = 0;
    PartialSpec s = spec_for("taken.bin", 3);
    s.pre.kind = Precondition::Kind::MustNotExist;
    PartialRef p = f.parts.create(s, rc);
    PartialAppend a;
    cr_assert_eq(f.parts.begin_append(p, a), 0);
    cr_assert_eq(a.write("abc", 3), 0);
    a.end();
    int fd = ::open((g_dir + "/taken.bin").c_str(), O_WRONLY | O_CREAT, 0644);  // someone else
    ::close(fd);
    FileInfo info;
    bool created = false;
    cr_expect_eq(f.parts.publish(p, info, created), -ESTALE);
    cr_expect_eq(slurp(g_dir + "/taken.bin"), "", "the other writer's file was replaced");
    cr_expect(!f.parts.find(p->id), "a failed publish kept the partial");

    PartialSpec d = spec_for("digest.bin", 3);
    d.has_expected = true;
    d.expected = Sha256::of("xyz");
    PartialRef q = f.parts.create(d, rc);
    PartialAppend b;
    cr_assert_eq(f.parts.begin_append(q, b), 0);
    cr_assert_eq(b.write("abc", 3), 0);
    b.end();
    cr_expect_eq(f.parts.publish(q, info, created), -EBADMSG);
    cr_expect(!fs::exists(g_dir + "/digest.bin"));
}

// Issue 9's compare-and-swap, carried by a partial: the precondition survives a restart and is
// checked by the same commit as a PUT's.
Test(partial_store, if_match_survives_a_reopen_and_is_checked_at_publish) {
    {
        int fd = ::open((g_dir + "/cas.bin").c_str(), O_WRONLY | O_CREAT, 0644);
        cr_assert_eq(::write(fd, "old", 3), 3);
        ::close(fd);
    }
    std::string id_ok, id_lost;
    {
        Fixture f;
        f.open();
        int rc = 0;
        PartialSpec s = spec_for("cas.bin", 3);
        s.pre.kind = Precondition::Kind::MustMatch;
        s.pre.etag = Sha256::of("old");
        PartialRef p = f.parts.create(s, rc);
        cr_assert(p);
        id_ok = p->id;
        s.pre.etag = Sha256::of("something else");
        PartialRef q = f.parts.create(s, rc);
        cr_assert(q);
        id_lost = q->id;
    }
    Fixture f;
    f.open();
    PartialRef p = f.parts.find(id_ok), q = f.parts.find(id_lost);
    cr_assert(p && q, "partials lost across a reopen");
    cr_expect(p->spec.pre.kind == Precondition::Kind::MustMatch);
    cr_expect(p->spec.pre.etag == Sha256::of("old"), "the precondition's ETag was not kept");
    for (const PartialRef& r : {q, p}) {
        PartialAppend a;
        cr_assert_eq(f.parts.begin_append(r, a), 0);
        cr_assert_eq(a.write("new", 3), 0);
        cr_assert_eq(a.finish()->rc, 0);
    }
    FileInfo info;
    bool created = false;
    cr_expect_eq(f.parts.publish(q, info, created), -ESTALE, "a wrong If-Match published");
    cr_expect_eq(slurp(g_dir + "/cas.bin"), "old");
    cr_expect_eq(f.parts.publish(p, info, created), 0);
    cr_expect_eq(slurp(g_dir + "/cas.bin"), "new");
    cr_expect(!created);
}

Test(partial_store, expiry_and_crash_leftovers) {
    {
        Fixture f;
        f.open(60);
        int rc = 0;
        PartialRef p = f.parts.create(spec_for("old.bin", 10), rc);
        cr_assert(p);
        f.parts.sweep(p->touched + 59, 100);
        cr_expect(f.parts.find(p->id), "expired too early");
        f.parts.sweep(p->touched + 60, 100);
        cr_expect(!f.parts.find(p->id), "not expired after the TTL");
        cr_expect_eq(f.metrics.partials_expired, 1u);
        cr_expect_eq(f.metrics.partials_open, 0u);
    }
    // Leftovers: a temporary state file, data without state, a state whose data is gone.
    std::string dir = g_dir + "/.duet-partial/";
    for (const char* n :
         {"0123456789abcdef0123456789abcdef.state.tmp", "fedcba9876543210fedcba9876543210.data"}) {
        int fd = ::open((dir + n).c_str(), O_WRONLY | O_CREAT, 0600);
        ::close(fd);
    }
    {
        Fixture f;
        f.open();
        int rc = 0;
        PartialRef p = f.parts.create(spec_for("lost.bin", 10), rc);
        cr_assert(p);
        ::unlink((dir + p->id + ".data").c_str());
    }
    Fixture f;
    f.open();
    cr_expect_eq(f.parts.count(), 0u);
    cr_expect_eq(entries_in(dir), 0u, "leftovers were not removed");
}

Test(partial_store, token_is_needed_again) {
    PartialSpec s = spec_for("t.bin", 1);
    s.token_hash = PartialStore::hash_token("secret");
    Partial p;
    p.spec = s;
    cr_expect(PartialStore::token_allows(p, "secret"));
    cr_expect(!PartialStore::token_allows(p, "other"));
    cr_expect(!PartialStore::token_allows(p, ""));
    Partial open;
    cr_expect(PartialStore::token_allows(open, ""));
}

// ---- checkpoints on helper threads ----------------------------------------------------------

namespace {
struct Pool {
    Loop loop;
    Helpers helpers;  // after loop: stopped and joined first
    int synced = 0;
    void start(PartialStore& parts) {
        cr_assert_eq(loop.init(), 0);
        cr_assert_eq(helpers.start(loop, 1), 0);
        parts.use_helpers(helpers, [this] { ++synced; });
    }
    // Runs the loop (where checkpoints complete) until `w` is done.
    void until_done(const std::shared_ptr<DiskWait>& w) {
        for (int i = 0; i < 200 && !w->done; ++i)
            if (loop.wait(50) > 0) loop.dispatch();
        cr_assert(w->done, "the checkpoint never completed");
    }
};
}  // namespace

// An append that ends while its pipe still holds bytes does not write them on the loop: finish()
// returns at once with the helper held up, the partial stays busy (another append is refused, a
// request waits for pending_sync), and once the helper has written the bytes the last checkpoint
// makes them durable.
Test(partial_store, an_append_ending_with_bytes_in_its_pipe_finishes_without_waiting) {
    const std::string data = bytes(6 * WritePipe::kBufferBytes + 100, 7);
    Fixture f;
    f.open();
    Pool pool;
    pool.start(f.parts);
    f.store.use_helpers(pool.helpers, [] {});
    int rc = 0;
    PartialRef p = f.parts.create(spec_for("d.bin", data.size()), rc);
    cr_assert(p);
    PartialAppend ap;
    cr_assert_eq(f.parts.begin_append(p, ap), 0);
    // The only helper is held: nothing of the pipe can be written until it is let go.
    std::atomic<bool> hold{true};
    auto job = std::make_unique<Helpers::Job>();
    job->work = [&hold] {
        while (hold) usleep(1000);
    };
    job->done = [] {};
    pool.helpers.submit(std::move(job));
    cr_assert_eq(ap.write(data.data(), data.size()), 0);
    std::shared_ptr<DiskWait> fin = ap.finish();
    cr_expect(!fin->done);
    cr_expect(p->busy, "released before its bytes were written");
    struct stat st;
    std::string file = g_dir + "/.duet-partial/" + p->id + ".data";
    cr_assert_eq(::stat(file.c_str(), &st), 0);
    cr_expect_lt(std::uint64_t(st.st_size), data.size(), "the loop wrote the pipe's bytes itself");
    PartialAppend other;
    cr_expect_eq(f.parts.begin_append(p, other), -EBUSY);
    std::shared_ptr<DiskWait> pending = PartialStore::pending_sync(*p);
    cr_expect(pending && !pending->done, "a request on the partial would not wait");
    cr_expect_eq(f.parts.syncing(), 1u, "a reload would not wait for it");
    hold = false;
    pool.until_done(fin);
    cr_expect_eq(fin->rc, 0);
    cr_expect_eq(p->offset, data.size());
    cr_expect(!p->busy);
    cr_expect_eq(f.parts.syncing(), 0u);
    cr_expect(slurp(file) == data);
}

// The offset moves only when a checkpoint is done (on the loop); one per partial at a time, the
// next queued behind it and taking the newest offset; an ended append keeps the partial busy
// until its last checkpoint is done, so no other append can truncate under it.
Test(partial_store, checkpoints_on_helpers_move_the_offset_only_when_done) {
    const std::string data = bytes(3000, 5);
    Fixture f;
    f.open();
    Pool pool;
    pool.start(f.parts);
    int rc = 0;
    PartialRef p = f.parts.create(spec_for("h.bin", data.size()), rc);
    cr_assert(p);
    PartialAppend ap;
    cr_assert_eq(f.parts.begin_append(p, ap), 0);
    cr_assert_eq(ap.write(data.data(), 1000), 0);
    std::shared_ptr<DiskWait> w1 = ap.checkpoint();
    cr_assert(w1);
    cr_expect(!w1->done && p->offset == 0, "announced before the loop heard the helper");
    cr_expect(ap.syncing());
    cr_assert_eq(ap.write(data.data() + 1000, 1000), 0);
    std::shared_ptr<DiskWait> w2 = ap.checkpoint();
    cr_assert_eq(ap.write(data.data() + 2000, 500), 0);
    std::shared_ptr<DiskWait> w3 = ap.checkpoint();
    cr_expect(w2 != w1 && w3 == w2, "the queued checkpoint takes the newest offset");
    std::shared_ptr<DiskWait> fin = ap.finish();
    cr_expect(!fin->done, "nothing after the queued checkpoint: the end waits for it");
    cr_expect(p->busy, "released before its last checkpoint");
    PartialAppend other;
    cr_expect_eq(f.parts.begin_append(p, other), -EBUSY);
    pool.until_done(fin);
    cr_expect(w1->done && w1->rc == 0);
    cr_expect(w3->done, "the end was done before its checkpoint");
    cr_expect_eq(fin->rc, 0);
    cr_expect_eq(p->offset, 2500u);
    cr_expect(!p->busy);
    cr_expect_eq(f.parts.syncing(), 0u);
    cr_expect_eq(pool.synced, 2, "two checkpoints, not three");
    Fixture again;
    again.open();
    PartialRef q = again.parts.find(p->id);
    cr_assert(q);
    cr_expect_eq(q->offset, 2500u, "the state file on disk");
}

// A checkpoint that fails (here: the partial directory removed, so the state file cannot be
// written) fails the one queued behind it without running it, leaves the offset where it was,
// and fails the append's next write and its end: after a failed fdatasync the bytes may be gone
// even if a later sync succeeds.
Test(partial_store, a_failed_checkpoint_fails_the_append_and_the_one_queued_behind_it) {
    const std::string data = bytes(2000, 6);
    Fixture f;
    f.open();
    Pool pool;
    pool.start(f.parts);
    int rc = 0;
    PartialRef p = f.parts.create(spec_for("e.bin", data.size()), rc);
    cr_assert(p);
    PartialAppend ap;
    cr_assert_eq(f.parts.begin_append(p, ap), 0);
    fs::remove_all(g_dir + "/" + PartialStore::kDir);
    cr_assert_eq(ap.write(data.data(), 1000), 0);
    std::shared_ptr<DiskWait> w1 = ap.checkpoint();
    cr_assert_eq(ap.write(data.data() + 1000, 500), 0);
    std::shared_ptr<DiskWait> w2 = ap.checkpoint();
    pool.until_done(w2);
    cr_expect(w1->done && w1->rc < 0, "rc %d", w1->rc);
    cr_expect_eq(w2->rc, w1->rc);
    cr_expect_eq(p->offset, 0u);
    cr_expect_eq(ap.write(data.data() + 1500, 500), w1->rc);
    std::shared_ptr<DiskWait> fin = ap.finish();
    cr_expect(fin->done && fin->rc < 0);
    cr_expect(!p->busy);
}

// A state file is read back only when every number is in range: a length or offset past 2^63-1
// (or past 2^64, which would wrap) is a damaged file, refused rather than read as another number.
Test(partial_store, state_files_with_out_of_range_numbers_are_refused) {
    Fixture f;
    f.open();
    int rc = 0;
    PartialRef p = f.parts.create(spec_for("n.bin", 10), rc);
    cr_assert(p);
    std::string good = partial_detail::serialize(*p);
    Partial back;
    cr_assert(partial_detail::parse_state(good, back), "%s", good.c_str());
    cr_expect_eq(back.spec.length, 10u);
    for (const char* bad :
         {"99999999999999999999", "18446744073709551616", "9223372036854775808"}) {
        std::string text = good;
        std::size_t at = text.find("length 10\n");
        cr_assert(at != std::string::npos, "%s", text.c_str());
        text.replace(at, 10, std::string("length ") + bad + "\n");
        Partial out;
        cr_expect_not(partial_detail::parse_state(text, out), "length %s was read as %llu", bad,
                      (unsigned long long)out.spec.length);
    }
}
