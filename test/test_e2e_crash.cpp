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

#include "duet/sha256.hpp"
#include "helper.hpp"

namespace {

t::Duet& g_srv = t::served;  // the server under test, see t::boot

using t::teardown;

std::string hex_sha256(const std::string& data) {
    return duet::to_hex(duet::Sha256::of(data));
}

// Entries of a directory (all of them, dot-files included), one name per element.
std::vector<std::string> entries(const std::string& dir) {
    std::vector<std::string> names;
    std::string out = t::sh("ls -A '" + dir + "'");
    std::size_t start = 0;
    while (start < out.size()) {
        std::size_t nl = out.find('\n', start);
        if (nl == std::string::npos) nl = out.size();
        if (nl > start) names.push_back(out.substr(start, nl - start));
        start = nl + 1;
    }
    return names;
}

bool is_regular(const std::string& path) {
    int st = 1;
    t::sh("test -f '" + path + "' && ! test -L '" + path + "'", &st);
    return st == 0;
}

struct Ledger {
    std::mutex mu;
    std::map<std::string, std::string> sent;   // every upload started: name -> sha256 of the body
    std::map<std::string, std::string> acked;  // acknowledged by the server
};

// One HTTP upload; true when acknowledged with the right digest.
bool put_http(int port, const std::string& name, const std::string& body, bool chunked) {
    int fd = t::connect_port(port);
    if (fd < 0) return false;
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
    std::string r = ok ? t::read_response(fd, false, 10000) : "";
    close(fd);
    int st = t::status_of(r);
    return (st == 201 || st == 200) &&
           r.find("\"sha256\":\"" + hex_sha256(body) + "\"") != std::string::npos;
}

// One file-port upload; true when acknowledged with the right digest.
bool put_files(int port, const std::string& name, const std::string& body, bool sized) {
    int fd = t::connect_port(port);
    if (fd < 0) return false;
    bool ok;
    if (sized) {
        ok = t::send_all(fd, "PUT " + name + " " + std::to_string(body.size()) + "\n") &&
             t::send_all(fd, body);
    } else {
        ok = t::send_all(fd, "PUT " + name + "\n") && t::send_all(fd, body) &&
             shutdown(fd, SHUT_WR) == 0;
    }
    std::string line = ok ? t::read_line(fd, 10000) : "";
    close(fd);
    return line == "OK " + std::to_string(body.size()) + " " + hex_sha256(body);
}

// Uploads until told to stop or the server goes away.
void uploader(int id, int round, unsigned seed, int http_port, int files_port, Ledger& ledger,
              const std::atomic<bool>& stop) {
    std::mt19937 rng(seed);
    for (int i = 0; !stop && i < 1000; ++i) {
        std::size_t size = 1024 + rng() % (2u << 20);
        std::string body = t::random_bytes(size, rng());
        std::string name = "r" + std::to_string(round) + "-u" + std::to_string(id) + "-" +
                           std::to_string(i) + ".bin";
        std::string digest = hex_sha256(body);
        {
            std::lock_guard<std::mutex> g(ledger.mu);
            ledger.sent[name] = digest;
        }
        bool acked = id % 2 == 0 ? put_http(http_port, name, body, i % 3 == 2)
                                 : put_files(files_port, name, body, i % 3 != 2);
        if (!acked) return;  // the server died under us (or refused): stop this uploader
        std::lock_guard<std::mutex> g(ledger.mu);
        ledger.acked[name] = digest;
    }
}

// After a restart: acknowledged uploads present and whole, nothing partial, no temporary file.
void check_store(Ledger& ledger, int round) {
    const std::string& dir = g_srv.data_dir;
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
    int acked_total = 0;
    for (int round = 0; round < 5; ++round) {
        bool ok = t::start(g_srv, {}, data);
        cr_assert(ok, "round %d: server did not start: %s", round, g_srv.err_log.c_str());
        if (round > 0) check_store(ledger, round);

        std::atomic<bool> stop{false};
        std::vector<std::thread> threads;
        for (int id = 0; id < 6; ++id)
            threads.emplace_back(uploader, id, round, unsigned(rng()), g_srv.http_port,
                                 g_srv.files_port, std::ref(ledger), std::cref(stop));
        int kill_after = 100 + int(rng() % 401);
        {
            pollfd none{-1, 0, 0};
            poll(&none, 0, kill_after);  // the random moment under test
        }
        pid_t pid = g_srv.pid;
        cr_assert_eq(kill(pid, SIGKILL), 0);
        int rc = t::wait_exit(g_srv, 10000);
        cr_assert_eq(rc, 128 + SIGKILL, "round %d: exit status %d", round, rc);
        stop = true;
        for (auto& th : threads) th.join();
        {
            std::lock_guard<std::mutex> g(ledger.mu);
            acked_total = int(ledger.acked.size());
        }
        std::fprintf(stderr, "round %d: killed after %d ms; %zu started, %d acknowledged so far\n",
                     round, kill_after, ledger.sent.size(), acked_total);
        close(g_srv.err_fd);
        g_srv = t::Duet{};
    }
    cr_assert(t::start(g_srv, {}, data), "final restart failed: %s", g_srv.err_log.c_str());
    check_store(ledger, 5);
    cr_expect_gt(acked_total, 0, "no upload was ever acknowledged: the test proved nothing");
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
    cr_expect(put_http(g_srv.http_port, "small.bin", small, false), "a small upload failed");
    cr_expect(put_files(g_srv.files_port, "fsmall.bin", small, true),
              "a small file-port upload failed");
    cr_expect_eq(t::stop(g_srv, SIGTERM), 0);
}
