// Black-box tests with hostile clients (issue 6): request smuggling, slowloris, slow readers, a
// connection flood past --max-conns and past the fd limit, and names and symlinks that try to
// reach outside the store. Each test starts build/duet-san on port 0 with a fresh store.
#include <criterion/criterion.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "duet/core/sha256.hpp"
#include "helper.hpp"

namespace {

t::Duet& g_srv = t::served;  // the server under test, see t::boot

using t::teardown;

using t::boot;

int connect_http() {
    int fd = t::connect_port(g_srv.http_port);
    cr_assert(fd >= 0, "connect to the HTTP port failed");
    return fd;
}

int connect_files() {
    int fd = t::connect_port(g_srv.files_port);
    cr_assert(fd >= 0, "connect to the file port failed");
    return fd;
}

// Reads until the peer closes; `closed` says whether it did within the timeout.
std::string read_until_close(int fd, bool& closed, int timeout_ms = 5000) {
    std::string out;
    closed = false;
    std::int64_t deadline = t::now_ms() + timeout_ms;
    char buf[65536];
    for (;;) {
        std::int64_t left = deadline - t::now_ms();
        if (left <= 0) return out;
        pollfd p{fd, POLLIN, 0};
        int r = poll(&p, 1, int(left));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return out;
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            closed = true;
            return out;
        }
        out.append(buf, std::size_t(n));
    }
}

// Number of HTTP status lines in a raw response stream.
int count_status_lines(const std::string& s) {
    int n = 0;
    for (std::size_t at = 0; (at = s.find("HTTP/1.", at)) != std::string::npos; ++at)
        if (at == 0 || s[at - 1] == '\n') ++n;
    return n;
}

bool server_answers_root() {
    return t::status_of(t::http(g_srv.http_port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")) == 200;
}

// Everything in the store but duet's bookkeeping: a leaked temporary file counts.
std::vector<std::string> store_files(const std::string& data_dir) {
    return t::store_listing(data_dir);
}

long proc_status_kib(pid_t pid, const char* key) {
    std::string s = t::read_file("/proc/" + std::to_string(pid) + "/status");
    std::size_t at = s.find(std::string(key) + ":");
    if (at == std::string::npos) return -1;
    return std::atol(s.c_str() + at + std::strlen(key) + 1);
}

// utime + stime of a process, in clock ticks.
long cpu_ticks(pid_t pid) {
    std::string s = t::read_file("/proc/" + std::to_string(pid) + "/stat");
    std::size_t rp = s.rfind(')');
    if (rp == std::string::npos) return -1;
    // Fields after the command: state(3) ... utime(14) stime(15).
    std::vector<std::string> f;
    std::size_t i = rp + 2;
    while (i < s.size() && f.size() < 13) {
        std::size_t sp = s.find(' ', i);
        if (sp == std::string::npos) sp = s.size();
        f.push_back(s.substr(i, sp - i));
        i = sp + 1;
    }
    if (f.size() < 13) return -1;
    return std::atol(f[11].c_str()) + std::atol(f[12].c_str());
}

std::string hex_sha256(const std::string& data) {
    return duet::to_hex(duet::Sha256::of(data));
}

const std::string kSmuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";

struct SmuggleCase {
    const char* what;
    std::string raw;  // the bad request; kSmuggled is appended in the same write
    int status_a;
    int status_b;  // either answer is acceptable (400 or 501 for unsupported codings)
};

// Sends the bad request with a smuggled one behind it in one write; exactly one answer, an error,
// then the connection closes without the smuggled request ever being answered.
void expect_rejected_once(const SmuggleCase& c) {
    int fd = connect_http();
    cr_assert(t::send_all(fd, c.raw + kSmuggled));
    bool closed = false;
    std::string all = read_until_close(fd, closed, 6000);
    close(fd);
    int st = t::status_of(all);
    cr_expect(st == c.status_a || st == c.status_b, "%s: status %d, want %d or %d: %s", c.what, st,
              c.status_a, c.status_b, all.c_str());
    cr_expect(closed, "%s: the connection stayed open", c.what);
    cr_expect_eq(count_status_lines(all), 1, "%s: %d responses (smuggled request answered?): %s",
                 c.what, count_status_lines(all), all.c_str());
    cr_expect(all.find("Connection: close") != std::string::npos, "%s: no Connection: close",
              c.what);
}

}  // namespace

TestSuite(hostile, .fini = teardown, .timeout = 60);

Test(hostile, smuggling_variants_are_rejected_and_close) {
    boot();
    const std::string put = "PUT /files/smug.bin HTTP/1.1\r\nHost: x\r\n";
    const std::string post = "POST / HTTP/1.1\r\nHost: x\r\n";
    std::vector<SmuggleCase> cases = {
        {"CL.TE", put + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400,
         400},
        {"CL.TE on an unknown route",
         post + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, 400},
        {"TE.CL",
         put + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n",
         400, 400},
        {"TE xchunked", put + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 501, 400},
        {"TE chunked, identity", put + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 501,
         400},
        {"TE identity, chunked", put + "Transfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n", 501,
         400},
        {"two TE headers",
         put + "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n", 501,
         400},
        {"TE chunked twice",
         put + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501,
         400},
        {"TE chunked,chunked", put + "Transfer-Encoding: chunked,chunked\r\n\r\n0\r\n\r\n", 501,
         400},
        {"TE with a vertical tab",
         put + "Transfer-Encoding: \x0b"
               "chunked\r\n\r\n0\r\n\r\n",
         400, 501},
        {"TE folded onto the next line", put + "Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
         400, 400},
        {"TE line with leading space", put + " Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400,
         400},
        {"TE with tab before colon", put + "Transfer-Encoding\t: chunked\r\n\r\n0\r\n\r\n", 400,
         400},
        {"TE with space before colon", put + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400,
         400},
        {"TE empty", put + "Transfer-Encoding: \r\nContent-Length: 5\r\n\r\nhello", 400, 400},
        {"TE quoted", put + "Transfer-Encoding: \"chunked\"\r\n\r\n0\r\n\r\n", 501, 400},
        {"duplicate CL, different values",
         put + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400, 400},
        {"comma-listed CL", put + "Content-Length: 5, 5\r\n\r\nhello", 400, 400},
        {"CL with a sign", put + "Content-Length: +5\r\n\r\nhello", 400, 400},
        {"CL negative", put + "Content-Length: -1\r\n\r\n", 400, 400},
        {"CL hex", put + "Content-Length: 0x5\r\n\r\nhello", 400, 400},
        {"CL overflowing 64 bits", put + "Content-Length: 18446744073709551621\r\n\r\nhello", 400,
         413},
        {"chunk size overflow",
         put + "Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nx\r\n0\r\n\r\n", 400, 400},
        {"chunk size with 0x", put + "Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
         400, 400},
        {"chunk size negative", put + "Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
         400, 400},
        {"chunk framing with bare LF", put + "Transfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n",
         400, 400},
        {"chunk data longer than its size",
         put + "Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n", 400, 400},
        {"bare CR in the head", "GET / HTTP/1.1\r\nHost: x\rX: y\r\n\r\n", 400, 400},
        {"NUL in a header", std::string("GET / HTTP/1.1\r\nHost: x\r\nX: a") + '\0' + "b\r\n\r\n",
         400, 400},
        {"two Host headers", "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400, 400},
    };
    for (auto& c : cases) expect_rejected_once(c);
    cr_expect(store_files(g_srv.data_dir).empty(), "a rejected upload stored something");
    cr_expect(server_answers_root(), "the server stopped answering");
}

// Whitespace around a lone "chunked" is OWS (RFC 9110 §5.6.3): the body is read as chunked, and
// the request behind it is a real second request, answered in order.
Test(hostile, te_with_ows_frames_the_body_as_chunked) {
    boot();
    int fd = connect_http();
    std::string raw =
        "PUT /files/ows.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \t chunked \t\r\n\r\n"
        "5\r\nhello\r\n0\r\n\r\nGET /files/ows.txt HTTP/1.1\r\nHost: x\r\nConnection: "
        "close\r\n\r\n";
    cr_assert(t::send_all(fd, raw));
    std::string r1 = t::read_response(fd);
    std::string r2 = t::read_response(fd);
    close(fd);
    cr_expect_eq(t::status_of(r1), 201, "%s", r1.c_str());
    cr_expect_eq(t::status_of(r2), 200, "%s", r2.c_str());
    cr_expect_eq(t::body_of(r2), "hello");
}

// Slowloris: 200 connections dribble a head one byte every 200 ms. Normal clients keep getting
// quick answers, and each slow one gets 408 and a close at --header-timeout.
Test(hostile, slowloris_does_not_slow_others_and_ends_in_408) {
    boot({"--header-timeout", "2"});
    const int kSlow = 200;
    const std::string head =
        "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + std::string(200, 'a') + "\r\n\r\n";
    struct Slow {
        int fd = -1;
        std::size_t sent = 0;
        std::int64_t start = 0;
        std::int64_t answered = -1;
        std::int64_t closed = -1;
        std::string got;
    };
    std::vector<Slow> slow;
    for (int i = 0; i < kSlow; ++i) {
        int fd = connect_http();
        Slow s;
        s.fd = fd;
        slow.push_back(s);
    }

    std::atomic<bool> done{false};
    std::atomic<long> worst_ms{0}, fast_ok{0}, fast_bad{0};
    std::thread fast([&] {
        while (!done) {
            std::int64_t t0 = t::now_ms();
            std::string r = t::http(g_srv.http_port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
            long ms = long(t::now_ms() - t0);
            if (t::status_of(r) == 200)
                ++fast_ok;
            else
                ++fast_bad;
            if (ms > worst_ms) worst_ms = ms;
            pollfd none{-1, 0, 0};
            poll(&none, 0, 50);  // pace the normal client: about 20 requests a second
        }
    });

    std::int64_t t0 = t::now_ms();
    for (auto& s : slow) {
        s.start = t0;
        send(s.fd, head.data(), 1, MSG_NOSIGNAL);
        s.sent = 1;
    }
    std::int64_t next_drip = t0 + 200;
    const std::int64_t deadline = t0 + 8000;
    int finished = 0;
    while (finished < kSlow && t::now_ms() < deadline) {
        std::vector<pollfd> p;
        std::vector<int> idx;
        for (int i = 0; i < kSlow; ++i)
            if (slow[i].closed < 0) {
                p.push_back(pollfd{slow[i].fd, POLLIN, 0});
                idx.push_back(i);
            }
        int wait = int(std::max<std::int64_t>(0, next_drip - t::now_ms()));
        int r = poll(p.data(), p.size(), wait);
        std::int64_t now = t::now_ms();
        for (std::size_t k = 0; r > 0 && k < p.size(); ++k) {
            if (!(p[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            Slow& s = slow[idx[k]];
            char buf[4096];
            ssize_t n = recv(s.fd, buf, sizeof buf, MSG_DONTWAIT);
            if (n > 0) {
                if (s.answered < 0) s.answered = now;
                s.got.append(buf, std::size_t(n));
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                s.closed = now;
                ++finished;
            }
        }
        if (t::now_ms() >= next_drip) {
            for (auto& s : slow)
                if (s.answered < 0 && s.closed < 0 && s.sent < head.size()) {
                    send(s.fd, head.data() + s.sent, 1, MSG_NOSIGNAL);
                    ++s.sent;
                }
            next_drip += 200;
        }
    }
    done = true;
    fast.join();

    int got408 = 0, timely = 0, dribbled = 0;
    std::int64_t earliest = INT64_MAX, latest = 0;
    for (auto& s : slow) {
        if (t::status_of(s.got) == 408) ++got408;
        if (s.sent >= 8 && s.sent < head.size()) ++dribbled;
        if (s.closed >= 0) {
            std::int64_t at = s.closed - s.start;
            earliest = std::min(earliest, at);
            latest = std::max(latest, at);
            if (at >= 1500 && at <= 4500) ++timely;
        }
        close(s.fd);
    }
    cr_expect_eq(dribbled, kSlow, "only %d connections dribbled a partial head to the end",
                 dribbled);
    cr_expect_eq(got408, kSlow, "%d of %d slow connections got 408", got408, kSlow);
    cr_expect_eq(finished, kSlow, "%d of %d slow connections were closed", finished, kSlow);
    cr_expect_eq(timely, kSlow, "closes between %lld and %lld ms, want about 2000",
                 (long long)earliest, (long long)latest);
    cr_expect(fast_ok >= 10 && fast_bad == 0, "normal clients: %ld ok, %ld failed", long(fast_ok),
              long(fast_bad));
    cr_expect(worst_ms < 500, "a normal request took %ld ms during the slowloris", long(worst_ms));
}

// A client that asks for 64 MiB and reads nothing for 2 s costs the server (almost) no memory:
// the file goes out with sendfile as the socket drains.
Test(hostile, slow_reader_of_a_big_download_costs_bounded_memory) {
    boot();
    const std::size_t kSize = 64u << 20;
    std::string big = t::random_bytes(kSize, 7);
    // Dropped into the store by hand, as the README allows.
    cr_assert(t::write_file(g_srv.data_dir + "/big.bin", big));
    // Warm up: the first listing computes the digest; the server's RSS settles afterwards.
    cr_assert(server_answers_root());
    std::string list = t::http(g_srv.http_port, "GET /files HTTP/1.1\r\nHost: x\r\n\r\n");
    cr_assert(list.find("big.bin") != std::string::npos, "%s", list.c_str());
    long before = proc_status_kib(g_srv.pid, "VmRSS");
    cr_assert(before > 0);

    int fd = connect_http();
    int small = 64 * 1024;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    cr_assert(
        t::send_all(fd, "GET /files/big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    // The stall under test: read nothing for 2 s, sampling the server's memory meanwhile.
    long peak = before;
    for (int i = 0; i < 20; ++i) {
        pollfd none{-1, 0, 0};
        poll(&none, 0, 100);
        peak = std::max(peak, proc_status_kib(g_srv.pid, "VmRSS"));
    }
    // Then read everything, still sampling.
    std::string got;
    std::int64_t deadline = t::now_ms() + 40000;
    char buf[1 << 16];
    int reads = 0;
    while (t::now_ms() < deadline) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        got.append(buf, std::size_t(n));
        if (++reads % 64 == 0) peak = std::max(peak, proc_status_kib(g_srv.pid, "VmRSS"));
    }
    close(fd);
    long grew = peak - before;
    cr_expect_lt(grew, 8 * 1024, "server RSS grew by %ld KiB (from %ld KiB)", grew, before);
    cr_assert_eq(t::status_of(got), 200, "%.300s", got.c_str());
    std::string body = t::body_of(got);
    cr_expect_eq(body.size(), kSize);
    cr_expect(body == big, "the download differs from the file");
}

// --max-conns 50 and 200 connections opened: those already served keep being served, and once
// the flood closes, new clients are served again.
Test(hostile, flood_past_max_conns_keeps_serving_and_recovers) {
    boot({"--max-conns", "50"});
    std::vector<int> keep;
    for (int i = 0; i < 5; ++i) {
        int fd = connect_http();
        cr_assert(t::send_all(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        cr_assert_eq(t::status_of(t::read_response(fd)), 200);
        keep.push_back(fd);
    }
    std::vector<int> flood;
    for (int i = 0; i < 200; ++i) {
        int fd = t::connect_port(g_srv.http_port);  // completes in the kernel backlog
        if (fd >= 0) flood.push_back(fd);
    }
    cr_expect_eq(flood.size(), 200u);
    // The connections the server already has keep working, quickly.
    for (int round = 0; round < 3; ++round)
        for (int fd : keep) {
            std::int64_t t0 = t::now_ms();
            cr_assert(t::send_all(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
            std::string r = t::read_response(fd, false, 3000);
            cr_expect_eq(t::status_of(r), 200, "an existing connection was not served: %s",
                         r.c_str());
            cr_expect_lt(t::now_ms() - t0, 1000);
        }
    // A flood connection past the limit waits in the backlog: no answer while the slots are full.
    int last = flood.back();
    cr_assert(t::send_all(last, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::string early = t::read_response(last, false, 300);
    cr_expect(early.empty(), "a connection past --max-conns was served: %s", early.c_str());
    for (int fd : flood)
        if (fd != last) close(fd);
    // Slots free up: the waiting one is served, and so is a new one.
    std::string late = t::read_response(last, false, 5000);
    cr_expect_eq(t::status_of(late), 200, "the waiting connection was not served: %s",
                 late.c_str());
    close(last);
    cr_expect(server_answers_root(), "new clients are not served after the flood");
    for (int fd : keep) close(fd);
}

// With only 64 fds, 100 connections exhaust them: duet stays up, does not spin on accept, and
// serves again once they close.
Test(hostile, fd_exhaustion_does_not_spin_and_recovers) {
    std::string dir = t::make_tmpdir();
    t::remove_at_teardown(dir);
    std::string bin = t::duet_binary();
    bool ok = t::start(g_srv,
                       {"-c", "ulimit -n 64 && exec \"$0\" \"$@\"", bin, "--http", "127.0.0.1:0",
                        "--files", "127.0.0.1:0", "--data", dir + "/data"},
                       dir + "/data", {}, "/bin/sh");
    cr_assert(ok, "server did not start: %s", g_srv.err_log.c_str());
    std::string limits = t::read_file("/proc/" + std::to_string(g_srv.pid) + "/limits");
    cr_assert(limits.find("Max open files            64") != std::string::npos, "%s",
              limits.c_str());
    cr_assert(server_answers_root());

    std::vector<int> conns;
    for (int i = 0; i < 100; ++i) {
        int fd = t::connect_port(i % 2 ? g_srv.files_port : g_srv.http_port);
        if (fd >= 0) conns.push_back(fd);
    }
    cr_expect_eq(conns.size(), 100u);
    // The server runs out of fds and pauses accepting (it logs that once); the last connections
    // wait unanswered in the backlog.
    t::send_all(conns.back(), "PING\n");
    cr_expect(t::wait_log(g_srv, "accept", 5000),
              "duet never reported running out of fds: the test did not reach EMFILE: %s",
              g_srv.err_log.c_str());
    long c0 = cpu_ticks(g_srv.pid);
    std::int64_t t0 = t::now_ms();
    pollfd none{-1, 0, 0};
    poll(&none, 0, 2000);  // the quiet period under test: the server must stay idle in it
    long c1 = cpu_ticks(g_srv.pid);
    long hz = sysconf(_SC_CLK_TCK);
    double cpu_s = double(c1 - c0) / double(hz);
    cr_expect_lt(cpu_s, 0.5, "duet used %.2f s of CPU in %lld ms while out of fds", cpu_s,
                 (long long)(t::now_ms() - t0));
    cr_expect_eq(kill(g_srv.pid, 0), 0, "duet died");

    for (int fd : conns) close(fd);
    // Serves again: a new client gets an answer within a few seconds.
    bool served = false;
    std::int64_t deadline = t::now_ms() + 10000;
    while (!served && t::now_ms() < deadline) served = server_answers_root();
    cr_expect(served, "not serving after the connections closed: %s", g_srv.err_log.c_str());
    int f = connect_files();
    cr_assert(t::send_all(f, "PING\n"));
    cr_expect_eq(t::read_line(f), "OK pong");
    close(f);
}

// Names that try to leave the store are refused with 400 / ERR 400 on both ports, before
// anything is touched.
Test(hostile, escaping_names_are_refused_on_both_ports) {
    std::string parent = boot();
    t::write_file(parent + "/outside.txt", "outside");
    std::vector<std::string> http_names = {
        "..",
        "%2e%2e",
        "%2E%2e%2f",
        "a%2fb",
        "%00",
        "a%00b",
        "..%2f..%2fetc%2fpasswd",
        "%2e%2e%2foutside.txt",
        "..%2foutside.txt",
        ".",
        "%2e",
        ".hidden",
        "a%2Fb",
        "%2F",
        "%20",
        "%",
        "%G1",
        "%2",
        "a//b",
        "../outside.txt",
        "..%5coutside.txt",
        std::string(256, 'a'),
        std::string(300, 'b'),
    };
    for (auto& n : http_names) {
        std::string target = "/files/" + n;
        // Raw dot-segments are removed before routing (RFC 3986 §5.2.4): "/files/.." is "/"
        // and "/files/../outside.txt" is "/outside.txt"; neither reaches the store.
        auto want = [&n](const std::string& m) {
            if (n == "..") return m == "GET" || m == "HEAD" ? 200 : 405;
            // "/files/." is "/files/", the top folder: listed, never deleted (README "Folders").
            if (n == ".") return m == "GET" || m == "HEAD" ? 200 : m == "DELETE" ? 403 : 400;
            if (n == "../outside.txt") return 404;
            return 400;
        };
        for (const char* m : {"GET", "HEAD", "DELETE"}) {
            std::string r = t::http(g_srv.http_port,
                                    std::string(m) + " " + target + " HTTP/1.1\r\nHost: x\r\n\r\n",
                                    std::string(m) == "HEAD");
            cr_expect_eq(t::status_of(r), want(m), "%s %s: %s", m, target.c_str(), r.c_str());
        }
        std::string r =
            t::http(g_srv.http_port,
                    "PUT " + target + " HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
        cr_expect_eq(t::status_of(r), want("PUT"), "PUT %s: %s", target.c_str(), r.c_str());
    }
    cr_expect_eq(t::status_of(t::http(g_srv.http_port, "GET /files/" + std::string(255, 'a') +
                                                           " HTTP/1.1\r\nHost: x\r\n\r\n")),
                 404, "a 255-byte name is valid (and missing)");

    std::vector<std::string> file_names = {
        "..",
        "../outside.txt",
        "a//b",
        "/etc/passwd",
        ".",
        ".hidden",
        "%2e%2e",
        "a%2fb",
        std::string("a\0b", 3),
        "a\x01"
        "b",
        std::string(256, 'a'),
        "..\\outside.txt",
    };
    for (auto& n : file_names) {
        for (const char* cmd : {"GET ", "STAT ", "DEL "}) {
            int fd = connect_files();
            cr_assert(t::send_all(fd, cmd + n + "\n"));
            std::string line = t::read_line(fd);
            cr_expect(line.rfind("ERR 400", 0) == 0, "%s%s: %s", cmd, n.c_str(), line.c_str());
            close(fd);
        }
        int fd = connect_files();
        cr_assert(t::send_all(fd, "PUT " + n + " 5\nhello"));
        std::string line = t::read_line(fd);
        cr_expect(line.rfind("ERR 400", 0) == 0, "PUT %s: %s", n.c_str(), line.c_str());
        cr_expect(t::peer_closed(fd, 3000), "PUT %s refused without closing", n.c_str());
        close(fd);
    }
    // Nothing was written anywhere: the store is empty and its parent only holds what we put.
    cr_expect(store_files(g_srv.data_dir).empty());
    cr_expect_eq(t::read_file(parent + "/outside.txt"), "outside");
    std::string ls = t::sh("ls -A '" + parent + "' | tr '\\n' ' '");
    cr_expect_eq(ls, "data outside.txt ", "the store's parent changed: %s", ls.c_str());
    cr_expect(!t::read_file("/etc/passwd").empty());
}

// A symlink planted in the store is neither listed nor served nor written through; a PUT to its
// name replaces the link itself.
Test(hostile, planted_symlink_is_never_followed) {
    std::string parent = boot();
    std::string outside = parent + "/outside.txt";
    cr_assert(t::write_file(outside, "SECRET outside the store\n"));
    std::string data = g_srv.data_dir;
    cr_assert_eq(symlink(outside.c_str(), (data + "/link.txt").c_str()), 0);
    cr_assert_eq(symlink("../outside.txt", (data + "/rel.txt").c_str()), 0);
    cr_assert_eq(symlink(outside.c_str(), (data + "/flink.txt").c_str()), 0);
    cr_assert_eq(symlink(parent.c_str(), (data + "/dirlink").c_str()), 0);

    for (const char* name : {"link.txt", "rel.txt", "flink.txt", "dirlink"}) {
        std::string r = t::http(g_srv.http_port,
                                "GET /files/" + std::string(name) + " HTTP/1.1\r\nHost: x\r\n\r\n");
        cr_expect_eq(t::status_of(r), 404, "GET %s: %s", name, r.c_str());
        cr_expect(r.find("SECRET") == std::string::npos, "%s served the outside file", name);
        r = t::http(g_srv.http_port, "GET /files/" + std::string(name) +
                                         " HTTP/1.1\r\nHost: x\r\nRange: bytes=0-5\r\n\r\n");
        cr_expect(r.find("SECRET") == std::string::npos);
        int fd = connect_files();
        cr_assert(t::send_all(fd, "GET " + std::string(name) + "\nSTAT " + name + "\n"));
        std::string l1 = t::read_line(fd), l2 = t::read_line(fd);
        close(fd);
        cr_expect(l1.rfind("ERR 404", 0) == 0, "file port GET %s: %s", name, l1.c_str());
        cr_expect(l2.rfind("ERR 404", 0) == 0, "file port STAT %s: %s", name, l2.c_str());
    }
    std::string list = t::http(g_srv.http_port, "GET /files HTTP/1.1\r\nHost: x\r\n\r\n");
    cr_expect(t::body_of(list).rfind("[]", 0) == 0, "symlinks are listed: %s", list.c_str());
    int fd = connect_files();
    cr_assert(t::send_all(fd, "LIST\n"));
    cr_expect_eq(t::read_line(fd), "OK 0");
    close(fd);

    // Writes replace the link, never the file it points to.
    std::string r = t::http(
        g_srv.http_port, "PUT /files/link.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nnew");
    cr_expect(t::status_of(r) == 201 || t::status_of(r) == 200, "PUT link.txt: %s", r.c_str());
    r = t::http(g_srv.http_port,
                "PUT /files/rel.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
                "chunked\r\n\r\n3\r\nnew\r\n0\r\n\r\n");
    cr_expect(t::status_of(r) == 201 || t::status_of(r) == 200, "PUT rel.txt: %s", r.c_str());
    fd = connect_files();
    cr_assert(t::send_all(fd, "PUT flink.txt 3\nnew"));
    std::string ok = t::read_line(fd);
    close(fd);
    cr_expect(ok.rfind("OK 3 ", 0) == 0, "file port PUT flink.txt: %s", ok.c_str());
    cr_expect_eq(t::read_file(outside), "SECRET outside the store\n", "the outside file changed");
    for (const char* name : {"link.txt", "rel.txt", "flink.txt"}) {
        struct stat st;
        cr_assert_eq(lstat((data + "/" + name).c_str(), &st), 0);
        cr_expect(S_ISREG(st.st_mode), "%s is still a symlink", name);
        cr_expect_eq(t::read_file(data + "/" + name), "new");
    }
    // Deleting the directory link is refused or removes the link only.
    t::http(g_srv.http_port, "DELETE /files/dirlink HTTP/1.1\r\nHost: x\r\n\r\n");
    cr_expect_eq(t::read_file(outside), "SECRET outside the store\n");
    struct stat st;
    cr_expect_eq(stat(parent.c_str(), &st), 0);
}

// A symlink to an outside file swapped in under the target name while an upload is in flight:
// the publish replaces the link, and the outside file is untouched.
Test(hostile, symlink_swapped_in_during_upload_is_not_followed) {
    std::string parent = boot();
    std::string outside = parent + "/outside.txt";
    const std::string secret = "SECRET outside the store\n";
    cr_assert(t::write_file(outside, secret));
    std::string data = g_srv.data_dir;
    const std::string body = t::random_bytes(1 << 20, 3);

    // Over HTTP, onto an existing name.
    cr_assert_eq(t::status_of(t::http(
                     g_srv.http_port,
                     "PUT /files/swap.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nold")),
                 201);
    int fd = connect_http();
    cr_assert(t::send_all(fd, "PUT /files/swap.txt HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                                  std::to_string(body.size()) + "\r\n\r\n" +
                                  body.substr(0, body.size() / 2)));
    std::string tmp = data + "/swap.txt.planted";
    cr_assert_eq(symlink(outside.c_str(), tmp.c_str()), 0);
    cr_assert_eq(rename(tmp.c_str(), (data + "/swap.txt").c_str()), 0);
    cr_assert(t::send_all(fd, body.substr(body.size() / 2)));
    std::string r = t::read_response(fd);
    close(fd);
    cr_expect(t::status_of(r) == 200 || t::status_of(r) == 201, "%s", r.c_str());
    cr_expect_eq(t::read_file(outside), secret, "the outside file changed");
    struct stat st;
    cr_assert_eq(lstat((data + "/swap.txt").c_str(), &st), 0);
    cr_expect(S_ISREG(st.st_mode), "swap.txt is still a symlink");
    cr_expect(t::read_file(data + "/swap.txt") == body, "swap.txt does not hold the upload");

    // Over the file port, onto a new name.
    fd = connect_files();
    cr_assert(t::send_all(fd, "PUT fswap.txt " + std::to_string(body.size()) + "\n" +
                                  body.substr(0, body.size() / 3)));
    cr_assert_eq(symlink(outside.c_str(), tmp.c_str()), 0);
    cr_assert_eq(rename(tmp.c_str(), (data + "/fswap.txt").c_str()), 0);
    cr_assert(t::send_all(fd, body.substr(body.size() / 3)));
    std::string line = t::read_line(fd);
    close(fd);
    cr_expect_eq(line, "OK " + std::to_string(body.size()) + " " + hex_sha256(body));
    cr_expect_eq(t::read_file(outside), secret, "the outside file changed");
    cr_assert_eq(lstat((data + "/fswap.txt").c_str(), &st), 0);
    cr_expect(S_ISREG(st.st_mode), "fswap.txt is still a symlink");

    // A GET while the name is a symlink serves nothing from outside.
    cr_assert_eq(symlink(outside.c_str(), tmp.c_str()), 0);
    cr_assert_eq(rename(tmp.c_str(), (data + "/swap.txt").c_str()), 0);
    r = t::http(g_srv.http_port, "GET /files/swap.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    cr_expect(r.find("SECRET") == std::string::npos, "served through a swapped-in symlink");
}
