// (Named *latency*: test/run.sh runs it alone, so the p99 bounds are not skewed by other tests.)
// Black-box tests of token guessing and log escaping (issue 9): a guesser on either port is slowed
// to at most 10 guesses a second after 5 failures and cut after 10, while /healthz and an
// authorised client on both ports keep their latency; a success resets the count; DUET_TOKEN=
// (empty) is refused; client bytes in the access log are escaped.
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "helper.hpp"

namespace {

t::Duet& g_srv = t::served;
const std::string kToken = "s3cret-token";

std::string request(const std::string& method, const std::string& path,
                    const std::string& fields = "") {
    return method + " " + path + " HTTP/1.1\r\nHost: x\r\n" + fields + "\r\n";
}

long metric(const std::string& name) {
    std::string m = t::body_of(t::http(g_srv.http_port, request("GET", "/metrics")));
    std::size_t at = m.find("\n" + name + " ");
    if (at == std::string::npos) return -1;
    return std::atol(m.c_str() + at + name.size() + 2);
}

// A socket from another local address (127.0.0.x), so the guesser is a client of its own.
int connect_from(const char* from, int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    inet_pton(AF_INET, from, &src.sin_addr);
    if (bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) return -1;
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(std::uint16_t(port));
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) return -1;
    timeval tv{20, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

struct Guess {
    std::vector<std::int64_t> answered_at;  // ms, one per answered guess
    bool closed = false;
};

// Wrong bearer tokens on one keep-alive HTTP connection until the server closes it.
Guess guess_http(const char* from) {
    Guess g;
    int fd = connect_from(from, g_srv.http_port);
    if (fd < 0) return g;
    for (int i = 0; i < 20; ++i) {
        if (!t::send_all(fd,
                         request("GET", "/files",
                                 "Authorization: Bearer wrong-" + std::to_string(i) + "\r\n"))) {
            g.closed = true;
            break;
        }
        std::string r = t::read_response(fd, false, 15000);
        if (t::status_of(r) != 401) {
            g.closed = true;
            break;
        }
        g.answered_at.push_back(t::now_ms());
        if (t::header_of(r, "connection") == "close") {
            g.closed = t::peer_closed(fd, 3000);
            break;
        }
    }
    close(fd);
    return g;
}

// Wrong AUTH lines on one file-port session until the server closes it.
Guess guess_files(const char* from) {
    Guess g;
    int fd = connect_from(from, g_srv.files_port);
    if (fd < 0) return g;
    for (int i = 0; i < 20; ++i) {
        t::send_all(fd, "AUTH wrong-" + std::to_string(i) + "\n");
        std::string l = t::read_line(fd, 15000);
        if (l.rfind("ERR 401", 0) != 0) {
            g.closed = true;
            break;
        }
        g.answered_at.push_back(t::now_ms());
        if (l != "ERR 401 bad token") {  // "...; too many attempts": then the close
            g.closed = t::peer_closed(fd, 3000);
            break;
        }
    }
    close(fd);
    return g;
}

void check_guesser(const Guess& g, std::int64_t started, const char* port) {
    cr_expect_eq(g.answered_at.size(), 10u, "%s: %zu guesses answered before the close", port,
                 g.answered_at.size());
    cr_expect(g.closed, "%s: the connection is closed after 10 failures", port);
    if (g.answered_at.size() < 10) return;
    // The first five are free; each later one waits at least 100 ms (at most 10 guesses/s).
    cr_expect_lt(g.answered_at[4] - started, 1500, "%s: the first five are not slowed", port);
    for (std::size_t i = 5; i < g.answered_at.size(); ++i)
        cr_expect_geq(g.answered_at[i] - g.answered_at[i - 1], 100,
                      "%s: guess %zu came %lld ms after the previous one", port, i + 1,
                      (long long)(g.answered_at[i] - g.answered_at[i - 1]));
}

// Reads one response with large reads (the helper reads byte by byte, which would put our own
// syscalls into the latency being measured). The server answers one request at a time here.
std::string fast_response(int fd, bool head_only) {
    std::string out;
    char buf[4096];
    std::size_t need = std::string::npos;
    for (;;) {
        std::size_t end = out.find("\r\n\r\n");
        if (end != std::string::npos && need == std::string::npos) {
            std::string cl = t::header_of(out, "content-length");
            need = end + 4 + (head_only || cl.empty() ? 0 : std::strtoull(cl.c_str(), nullptr, 10));
        }
        if (need != std::string::npos && out.size() >= need) return out;
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return out;
        out.append(buf, std::size_t(n));
    }
}

std::string fast_line(int fd) {
    std::string out;
    char buf[512];
    while (out.find('\n') == std::string::npos) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        out.append(buf, std::size_t(n));
    }
    if (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
}

double p99(std::vector<double> v) {
    if (v.empty()) return 1e9;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, v.size() * 99 / 100)];
}

double ms_since(std::int64_t t0_us) {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return double(std::int64_t(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000 - t0_us) / 1000.0;
}
std::int64_t now_us() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

struct Samples {
    std::vector<double> health, files_http, files_port;
};

// One round of the clients that must not notice the guessers: /healthz and an authorised request
// on the HTTP connection `h`, an authorised STAT on the file session `f`; each timed.
void sample(int h, int f, Samples& s) {
    std::int64_t t0 = now_us();
    t::send_all(h, request("GET", "/healthz"));
    std::string r = fast_response(h, false);
    s.health.push_back(ms_since(t0));
    cr_assert_eq(t::status_of(r), 200);
    t0 = now_us();
    t::send_all(h, request("HEAD", "/files/a.txt", "Authorization: Bearer " + kToken + "\r\n"));
    r = fast_response(h, true);
    s.files_http.push_back(ms_since(t0));
    cr_assert_eq(t::status_of(r), 200, "%s", r.c_str());
    t0 = now_us();
    t::send_all(f, "STAT a.txt\n");
    std::string l = fast_line(f);
    s.files_port.push_back(ms_since(t0));
    cr_assert(l.rfind("OK 2 ", 0) == 0, "%s", l.c_str());
    usleep(5000);
}

}  // namespace

TestSuite(e2e_auth, .fini = t::teardown, .timeout = 60);

Test(e2e_auth, guessers_are_slowed_and_cut_while_others_keep_their_latency) {
    t::boot({"--token", kToken});
    // The authorised clients, on 127.0.0.1: one keep-alive HTTP connection and one
    // authenticated file session.
    int h = t::connect_port(g_srv.http_port);
    int one = 1;
    setsockopt(h, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int f = t::connect_port(g_srv.files_port);
    setsockopt(f, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    t::send_all(f, "AUTH " + kToken + "\n");
    cr_assert_eq(t::read_line(f), "OK");
    t::send_all(f, "PUT a.txt 2\nhi");
    std::string put = t::read_line(f);
    cr_assert(put.rfind("OK 2 ", 0) == 0, "%s", put.c_str());

    std::int64_t started = t::now_ms();
    Guess gh, gf;
    std::atomic<int> running{2};
    std::thread th([&] {
        gh = guess_http("127.0.0.2");
        --running;
    });
    std::thread tf([&] {
        gf = guess_files("127.0.0.3");
        --running;
    });
    Samples during;
    while (running > 0) sample(h, f, during);
    th.join();
    tf.join();
    check_guesser(gh, started, "http");
    check_guesser(gf, started, "files");
    // The same load with nobody guessing, right after: what this machine gives anyway. 300
    // rounds (about 2 s) are enough for its p99; the guessers' part lasts as long as their
    // throttle schedule (about 6 s).
    Samples quiet;
    while (quiet.health.size() < std::min<std::size_t>(during.health.size(), 300))
        sample(h, f, quiet);
    close(h);
    close(f);
    cr_log_info(
        "p99 with guessers (without) over %zu rounds: /healthz %.2f (%.2f) ms, "
        "authorised HTTP %.2f (%.2f) ms, file port %.2f (%.2f) ms",
        during.health.size(), p99(during.health), p99(quiet.health), p99(during.files_http),
        p99(quiet.files_http), p99(during.files_port), p99(quiet.files_port));
    cr_expect_gt(during.health.size(), 100u);
    // p99 < 5 ms (issue 9). On a machine so loaded that even the run without guessers misses
    // that, "no change" is what is checked: within 1.5x + 1 ms of that run.
    auto bound = [](double quiet_p99) { return std::max(5.0, quiet_p99 * 1.5 + 1.0); };
    cr_expect_lt(p99(during.health), bound(p99(quiet.health)), "/healthz p99 %.2f ms",
                 p99(during.health));
    cr_expect_lt(p99(during.files_http), bound(p99(quiet.files_http)),
                 "authorised HTTP p99 %.2f ms", p99(during.files_http));
    cr_expect_lt(p99(during.files_port), bound(p99(quiet.files_port)),
                 "authorised file-port p99 %.2f ms", p99(during.files_port));
    cr_expect_eq(metric("duet_auth_failures_total"), 20);
    cr_expect_eq(metric("duet_auth_throttled_total"), 10);
}

Test(e2e_auth, a_success_resets_the_count) {
    t::boot({"--token", kToken});
    int fd = connect_from("127.0.0.4", g_srv.files_port);
    cr_assert(fd >= 0);
    for (int i = 0; i < 5; ++i) {
        t::send_all(fd, "AUTH nope\n");
        cr_assert_eq(t::read_line(fd), "ERR 401 bad token");
    }
    // The sixth attempt waits its turn (even a right one: the wait must not tell right from
    // wrong), and then resets the count.
    std::int64_t t0 = t::now_ms();
    t::send_all(fd, "AUTH " + kToken + "\n");
    cr_assert_eq(t::read_line(fd), "OK");
    cr_expect_geq(t::now_ms() - t0, 150);
    t0 = t::now_ms();
    t::send_all(fd, "AUTH nope\n");
    cr_assert_eq(t::read_line(fd), "ERR 401 bad token");
    cr_expect_lt(t::now_ms() - t0, 150, "after a success the count starts again");
    close(fd);
    // A request without any token is not a guess: 401 at once, not counted.
    for (int i = 0; i < 8; ++i) {
        std::string r = t::http(g_srv.http_port, request("GET", "/files"));
        cr_assert_eq(t::status_of(r), 401);
    }
    cr_expect_eq(metric("duet_auth_failures_total"), 6);
}

Test(e2e_auth, empty_duet_token_exits_2) {
    std::string dir = t::make_tmpdir();
    t::remove_at_teardown(dir);
    int st = 0;
    std::string out =
        t::sh("DUET_TOKEN= timeout 10 " + t::duet_binary() +
                  " --http 127.0.0.1:0 --files 127.0.0.1:0 --data '" + dir + "/data' 2>&1",
              &st);
    cr_expect_eq(st, 2, "status %d: %s", st, out.c_str());
    cr_expect(out.find("DUET_TOKEN") != std::string::npos, "%s", out.c_str());
    cr_expect(out.find("ready") == std::string::npos, "%s", out.c_str());
}

Test(e2e_auth, access_log_escapes_client_bytes) {
    std::string dir = t::make_tmpdir();
    t::remove_at_teardown(dir);
    std::string log = dir + "/access.log";
    bool ok =
        t::start(g_srv,
                 {"-c", "exec \"$0\" \"$@\" > '" + log + "'", t::duet_binary(), "--http",
                  "127.0.0.1:0", "--files", "127.0.0.1:0", "--data", dir + "/data", "--access-log"},
                 dir + "/data", {}, "/bin/sh");
    cr_assert(ok, "%s", g_srv.err_log.c_str());
    int fd = t::connect_port(g_srv.files_port);
    t::send_all(fd,
                "FROB \r\x1b[31mfake\" \\ \xff\nSTAT a\x01"
                "b\nQUIT\n");
    t::read_all(fd, 5000);
    close(fd);
    t::http(g_srv.http_port, "GET /files/a\"b\\c HTTP/1.1\r\nHost: x\r\n\r\n");
    t::stop(g_srv);
    std::string text = t::read_file(log);
    cr_assert(!text.empty());
    for (unsigned char c : text)
        cr_expect(c == '\n' || (c >= 0x20 && c != 0x7f && c != 0xff), "raw byte 0x%02x", c);
    cr_expect(text.find("\\x0D\\x1B[31mfake\\x22 \\x5C \\xFF") != std::string::npos, "%s",
              text.c_str());
    cr_expect(text.find("STAT a\\x01b") != std::string::npos, "%s", text.c_str());
    cr_expect(text.find("GET /files/a\\x22b\\x5Cc HTTP/1.1") != std::string::npos, "%s",
              text.c_str());
    // One line per command or request: nothing forged a second line.
    cr_expect_eq(std::count(text.begin(), text.end(), '\n'), 4, "%s", text.c_str());
}
