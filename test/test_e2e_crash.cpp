// Crash consistency (issue 6): duet is killed with SIGKILL at random moments while uploads run on
// both ports, and restarted on the same store; every acknowledged upload must be there whole, no
// partial file may be visible, and no temporary file may be left. Disk full (RLIMIT_FSIZE): 507 /
// ERR 507, nothing stored, and duet keeps serving.
#include <criterion/criterion.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "duet/core/sha256.hpp"
#include "helper.hpp"

namespace {

t::Duet& g_srv = t::served;  // the server under test, see t::boot

using t::teardown;

std::string hex_sha256(const std::string& data) {
    return duet::to_hex(duet::Sha256::of(data));
}

// Everything in the store but duet's bookkeeping: a leaked temporary file counts.
std::vector<std::string> entries(const std::string& dir) {
    return t::store_listing(dir);
}

bool is_regular(const std::string& path) {
    int st = 1;
    t::sh("test -f '" + path + "' && ! test -L '" + path + "'", &st);
    return st == 0;
}

// The four kinds of upload; each must keep working in every round (see kFloor).
enum Kind { kHttpLength, kHttpChunked, kPortSized, kPortEof, kKinds };
const char* kKindName[kKinds] = {"HTTP Content-Length PUT", "HTTP chunked PUT",
                                 "file-port sized PUT", "file-port PUT until half-close"};
// Each kind must be acknowledged at least this many times in every round before the kill: a kind
// that stops working (a 501, a wrong digest, a hang) fails the test instead of thinning it.
constexpr int kFloor = 3;
// How long a round may take to reach the floors (ASan build, 2 shared cores).
constexpr int kFloorWaitMs = 30000;

struct Ledger {
    std::mutex mu;
    std::map<std::string, std::string> sent;   // every upload started: name -> sha256 of the body
    std::map<std::string, std::string> acked;  // acknowledged by the server
    int round_acked[kKinds] = {};              // acknowledged in the current round, per kind
    std::vector<std::string> errors;           // failures while the server was alive
};

// One HTTP upload; "" when acknowledged with the right digest, else what went wrong.
std::string put_http(int port, const std::string& name, const std::string& body, bool chunked) {
    int fd = t::connect_port(port);
    if (fd < 0) return "cannot connect";
    std::string head = "PUT /files/" + name + " HTTP/1.1\r\nHost: x\r\n";
    bool ok;
    if (chunked) {
        ok = t::send_all(fd, head + "Transfer-Encoding: chunked\r\n\r\n");
        for (std::size_t off = 0; ok && off < body.size(); off += 65536) {
            std::string piece = body.substr(off, 65536);
            char size[32];
            std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
            ok = t::send_all(fd, size + piece + "\r\n");
        }
        ok = ok && t::send_all(fd, "0\r\n\r\n");
    } else {
        ok =
            t::send_all(fd, head + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n") &&
            t::send_all(fd, body);
    }
    std::string r = t::read_response(fd, false, 10000);
    close(fd);
    int st = t::status_of(r);
    if ((st == 201 || st == 200) &&
        r.find("\"sha256\":\"" + hex_sha256(body) + "\"") != std::string::npos)
        return "";
    return std::string(ok ? "" : "send failed; ") + "answer: " + r.substr(0, 200);
}

// One file-port upload; "" when acknowledged with the right digest, else what went wrong.
std::string put_files(int port, const std::string& name, const std::string& body, bool sized) {
    int fd = t::connect_port(port);
    if (fd < 0) return "cannot connect";
    bool ok;
    if (sized) {
        ok = t::send_all(fd, "PUT " + name + " " + std::to_string(body.size()) + "\n") &&
             t::send_all(fd, body);
    } else {
        ok = t::send_all(fd, "PUT " + name + "\n") && t::send_all(fd, body) &&
             shutdown(fd, SHUT_WR) == 0;
    }
    std::string line = t::read_line(fd, 10000);
    close(fd);
    if (line == "OK " + std::to_string(body.size()) + " " + hex_sha256(body)) return "";
    return std::string(ok ? "" : "send failed; ") + "answer: " + line.substr(0, 200);
}

std::string upload(Kind kind, const t::Duet& srv, const std::string& name,
                   const std::string& body) {
    switch (kind) {
        case kHttpLength:
            return put_http(srv.http_port, name, body, false);
        case kHttpChunked:
            return put_http(srv.http_port, name, body, true);
        case kPortSized:
            return put_files(srv.files_port, name, body, true);
        default:
            return put_files(srv.files_port, name, body, false);
    }
}

// Uploads one kind until the server is killed. A failure while the server is alive is recorded
// (and the uploader carries on); after the kill the first failure ends it.
void uploader(int id, Kind kind, int round, unsigned seed, const t::Duet& srv, Ledger& ledger,
              const std::atomic<bool>& killed) {
    std::mt19937 rng(seed);
    for (int i = 0; i < 1000; ++i) {
        std::size_t size = 1024 + rng() % (2u << 20);
        std::string body = t::random_bytes(size, rng());
        std::string name = "r" + std::to_string(round) + "-u" + std::to_string(id) + "-" +
                           std::to_string(i) + ".bin";
        std::string digest = hex_sha256(body);
        {
            std::lock_guard<std::mutex> g(ledger.mu);
            ledger.sent[name] = digest;
        }
        std::string failure = upload(kind, srv, name, body);
        std::lock_guard<std::mutex> g(ledger.mu);
        if (failure.empty()) {
            ledger.acked[name] = digest;
            ++ledger.round_acked[kind];
            continue;
        }
        if (killed) return;  // the server died under us: expected
        ledger.errors.push_back(std::string(kKindName[kind]) + " " + name + ": " + failure);
    }
}

// After a restart: acknowledged uploads present and whole, nothing partial, no temporary file.
void check_store(Ledger& ledger, int round) {
    const std::string& dir = g_srv.data_dir;
    // Stale temporaries are swept by the start-up scan of the store index, which runs after the
    // ready line; a LIST is answered only once that scan is done, so wait for its answer.
    int lfd = t::connect_port(g_srv.files_port);
    cr_assert(lfd >= 0, "round %d: cannot connect to the file port", round);
    cr_assert(t::send_all(lfd, "LIST\n"));
    std::string first = t::read_line(lfd);
    close(lfd);
    cr_assert(first.rfind("OK ", 0) == 0, "round %d: LIST answered %s", round, first.c_str());
    for (auto& e : entries(dir))
        cr_expect(e.rfind(".duet-tmp", 0) != 0, "round %d: temporary file left: %s", round,
                  e.c_str());

    int visible = 0;
    for (auto& e : entries(dir)) {
        if (e[0] == '.') continue;
        ++visible;
        auto it = ledger.sent.find(e);
        cr_expect(it != ledger.sent.end(), "round %d: unknown file %s", round, e.c_str());
        if (it == ledger.sent.end()) continue;
        std::string content = t::read_file(dir + "/" + e);
        cr_expect_eq(hex_sha256(content), it->second,
                     "round %d: %s is partial or wrong (%zu bytes)", round, e.c_str(),
                     content.size());
    }
    cr_expect_geq(visible, int(ledger.acked.size()));

    int fd = t::connect_port(g_srv.files_port);
    cr_assert(fd >= 0);
    int http_checked = 0;
    for (auto& [name, digest] : ledger.acked) {
        cr_expect(is_regular(dir + "/" + name), "round %d: acknowledged %s is missing", round,
                  name.c_str());
        cr_assert(t::send_all(fd, "STAT " + name + "\n"));
        std::string line = t::read_line(fd);
        cr_expect(line.rfind("OK ", 0) == 0 && line.find(" " + digest + " ") != std::string::npos,
                  "round %d: STAT %s: %s (want %s)", round, name.c_str(), line.c_str(),
                  digest.c_str());
        // A few whole downloads over HTTP too.
        if (http_checked < 4) {
            ++http_checked;
            std::string r =
                t::http(g_srv.http_port, "GET /files/" + name + " HTTP/1.1\r\nHost: x\r\n\r\n");
            cr_expect_eq(t::status_of(r), 200, "round %d: GET %s", round, name.c_str());
            cr_expect_eq(hex_sha256(t::body_of(r)), digest, "round %d: GET %s content", round,
                         name.c_str());
        }
    }
    close(fd);
}

}  // namespace

TestSuite(crash, .fini = teardown, .timeout = 120);

Test(crash, kill9_during_uploads_keeps_acknowledged_and_nothing_partial) {
    std::string parent = t::make_tmpdir();
    t::remove_at_teardown(parent);
    std::string data = parent + "/data";
    unsigned base = unsigned(std::random_device{}());
    std::mt19937 rng(base);
    std::fprintf(stderr, "crash test seed %u\n", base);
    Ledger ledger;
    for (int round = 0; round < 5; ++round) {
        bool ok = t::start(g_srv, {}, data);
        cr_assert(ok, "round %d: server did not start: %s", round, g_srv.err_log.c_str());
        if (round > 0) check_store(ledger, round);
        {
            std::lock_guard<std::mutex> g(ledger.mu);
            for (int& n : ledger.round_acked) n = 0;
        }

        // Two uploaders per kind, so every kind is in flight at the kill.
        std::atomic<bool> killed{false};
        std::vector<std::thread> threads;
        for (int id = 0; id < 2 * kKinds; ++id)
            threads.emplace_back(uploader, id, Kind(id % kKinds), round, unsigned(rng()),
                                 std::cref(g_srv), std::ref(ledger), std::cref(killed));
        // Wait (bounded) until every kind has reached its floor, then kill at a random moment.
        std::int64_t deadline = t::now_ms() + kFloorWaitMs;
        bool floors = false;
        while (!floors && t::now_ms() < deadline) {
            {
                std::lock_guard<std::mutex> g(ledger.mu);
                floors = true;
                for (int n : ledger.round_acked) floors = floors && n >= kFloor;
            }
            if (!floors) usleep(5000);
        }
        int kill_after = int(rng() % 301);
        {
            pollfd none{-1, 0, 0};
            poll(&none, 0, kill_after);  // the random moment under test
        }
        killed = true;
        pid_t pid = g_srv.pid;
        cr_assert_eq(kill(pid, SIGKILL), 0);
        int rc = t::wait_exit(g_srv, 10000);
        cr_assert_eq(rc, 128 + SIGKILL, "round %d: exit status %d", round, rc);
        for (auto& th : threads) th.join();
        std::lock_guard<std::mutex> g(ledger.mu);
        std::fprintf(stderr,
                     "round %d: killed %d ms after the floors; acknowledged this round: %d / %d / "
                     "%d / %d (HTTP CL / chunked / port sized / port EOF); %zu so far\n",
                     round, kill_after, ledger.round_acked[0], ledger.round_acked[1],
                     ledger.round_acked[2], ledger.round_acked[3], ledger.acked.size());
        for (int k = 0; k < kKinds; ++k)
            cr_expect_geq(ledger.round_acked[k], kFloor,
                          "round %d: %s acknowledged %d times, the floor is %d", round,
                          kKindName[k], ledger.round_acked[k], kFloor);
        for (std::size_t i = 0; i < ledger.errors.size() && i < 5; ++i)
            cr_expect(false, "round %d: failed while the server was up: %s", round,
                      ledger.errors[i].c_str());
        cr_assert(ledger.errors.empty() && floors, "round %d: a kind of upload stopped working",
                  round);
        close(g_srv.err_fd);
        g_srv = t::Duet{};
    }
    cr_assert(t::start(g_srv, {}, data), "final restart failed: %s", g_srv.err_log.c_str());
    check_store(ledger, 5);
    cr_expect_eq(t::stop(g_srv, SIGTERM), 0);
}

// RLIMIT_FSIZE of 1 MiB stands in for a full disk: writes past it fail with EFBIG (duet must
// ignore SIGXFSZ, whose default action would kill it).
Test(crash, disk_full_answers_507_stores_nothing_and_keeps_serving) {
    std::string parent = t::make_tmpdir();
    t::remove_at_teardown(parent);
    std::string data = parent + "/data";
    // dash and bash (POSIX mode) count ulimit -f in 512-byte blocks: 2048 is 1 MiB.
    bool ok = t::start(g_srv,
                       {"-c", "ulimit -f 2048 && exec \"$0\" \"$@\"", t::duet_binary(), "--http",
                        "127.0.0.1:0", "--files", "127.0.0.1:0", "--data", data},
                       data, {}, "/bin/sh");
    cr_assert(ok, "server did not start: %s", g_srv.err_log.c_str());
    std::string limits = t::read_file("/proc/" + std::to_string(g_srv.pid) + "/limits");
    cr_assert(limits.find("Max file size             1048576") != std::string::npos, "%s",
              limits.c_str());
    const std::string big = t::random_bytes(2u << 20, 11);

    // HTTP, Content-Length and chunked. The body is sent from a thread: the server answers (and
    // stops reading) before it has all of it.
    for (int chunked = 0; chunked < 2; ++chunked) {
        int fd = t::connect_port(g_srv.http_port);
        cr_assert(fd >= 0);
        std::string raw =
            "PUT /files/big" + std::to_string(chunked) + ".bin HTTP/1.1\r\nHost: x\r\n";
        if (chunked) {
            raw += "Transfer-Encoding: chunked\r\n\r\n";
            for (std::size_t off = 0; off < big.size(); off += 65536) {
                char size[32];
                std::snprintf(size, sizeof size, "%x\r\n", 65536);
                raw += size + big.substr(off, 65536) + "\r\n";
            }
            raw += "0\r\n\r\n";
        } else {
            raw += "Content-Length: " + std::to_string(big.size()) + "\r\n\r\n" + big;
        }
        std::thread sender([fd, raw] { t::send_all(fd, raw); });
        std::string r = t::read_response(fd, false, 15000);
        shutdown(fd, SHUT_RDWR);
        sender.join();
        close(fd);
        cr_expect_eq(t::status_of(r), 507, "HTTP %s: %s", chunked ? "chunked" : "Content-Length",
                     r.c_str());
        cr_assert_eq(kill(g_srv.pid, 0), 0, "duet died (SIGXFSZ not ignored?): %s",
                     g_srv.err_log.c_str());
    }

    // The file port, sized and unsized.
    for (int sized = 0; sized < 2; ++sized) {
        int fd = t::connect_port(g_srv.files_port);
        cr_assert(fd >= 0);
        std::string raw = sized ? "PUT fbig.bin " + std::to_string(big.size()) + "\n" + big
                                : "PUT fbig.bin\n" + big;
        std::thread sender([fd, raw, sized] {
            if (t::send_all(fd, raw) && !sized) shutdown(fd, SHUT_WR);
        });
        std::string line = t::read_line(fd, 15000);
        shutdown(fd, SHUT_RDWR);
        sender.join();
        close(fd);
        cr_expect(line.rfind("ERR 507", 0) == 0, "file port %s PUT: %s",
                  sized ? "sized" : "unsized", line.c_str());
        cr_assert_eq(kill(g_srv.pid, 0), 0, "duet died (SIGXFSZ not ignored?)");
    }

    // Nothing stored, nothing temporary left behind.
    for (auto& e : entries(data)) {
        cr_expect(e.rfind(".duet-tmp", 0) != 0, "temporary file left: %s", e.c_str());
        cr_expect(e[0] == '.', "something was stored: %s", e.c_str());
    }
    // Still serving, and a small upload still fits.
    cr_expect_eq(t::status_of(t::http(g_srv.http_port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")), 200);
    const std::string small = t::random_bytes(100 * 1024, 12);
    cr_expect(put_http(g_srv.http_port, "small.bin", small, false).empty(),
              "a small upload failed");
    cr_expect(put_files(g_srv.files_port, "fsmall.bin", small, true).empty(),
              "a small file-port upload failed");
    cr_expect_eq(t::stop(g_srv, SIGTERM), 0);
}
