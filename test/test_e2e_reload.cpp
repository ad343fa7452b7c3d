// Black-box reload tests (README "Stop and reload", issue 12): every connection crosses the execve
// in whatever state it is. Many reloads (SIGHUP and a replaced binary under --reload, mixed) while
// downloads are read slowly, uploads trickle in (HTTP sized and chunked, file port sized and
// unsized), heads and command lines are half sent, keep-alive connections sit idle and LISTs are
// paused; then the fall-back drain when the new image reads another hand-over format, one corrupted
// record costing one connection, reloads that never wait for --grace, and flat fds and memory
// after many reloads.
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "duet/core/base64.hpp"
#include "duet/core/sha256.hpp"
#include "helper.hpp"

namespace {

namespace fs = std::filesystem;

const std::string kToken = "tok";
const std::string kAuth = "Authorization: Bearer tok\r\n";
constexpr int kReloads = 20;
constexpr std::size_t kDownload = 4u << 20;
constexpr std::size_t kUpload = 1u << 20;
// A LIST or a download pauses only once the server's socket buffer is full. Linux sizes that
// from the MSS (64 KiB on loopback: megabytes), so the slow readers here connect with a small
// MSS and receive buffer; long names make a LIST of few files span many buffers.
constexpr int kListFiles = 1000;
constexpr std::size_t kNamePad = 240;

std::vector<pid_t> g_pids;
std::vector<std::string> g_dirs;

void cleanup() {
    for (pid_t p : g_pids) {
        if (waitpid(p, nullptr, WNOHANG) == 0) {
            kill(p, SIGKILL);
            waitpid(p, nullptr, 0);
        }
    }
    for (auto& d : g_dirs) {
        std::error_code ec;
        fs::remove_all(d, ec);
    }
    g_pids.clear();
    g_dirs.clear();
}

std::string tmpdir() {
    std::string d = t::make_tmpdir();
    cr_assert(!d.empty());
    g_dirs.push_back(d);
    return d;
}

void launch(t::Duet& d, std::vector<std::string> args, std::string data = "",
            std::vector<std::string> env = {}, std::string binary = "") {
    bool ok = t::start(d, std::move(args), data, std::move(env), std::move(binary));
    if (d.pid > 0) g_pids.push_back(d.pid);
    if (data.empty() && !d.data_dir.empty())
        g_dirs.push_back(fs::path(d.data_dir).parent_path().string());
    cr_assert(ok, "server did not start; stderr:\n%s", d.err_log.c_str());
}

std::string abs_path(const std::string& p) {
    char buf[PATH_MAX];
    return realpath(p.c_str(), buf) ? buf : p;
}

// A reload by SIGHUP; waits for the next generation's ready line.
void reload_by_signal(t::Duet& d, int generation) {
    std::size_t from = d.err_log.size();
    cr_assert_eq(kill(d.pid, SIGHUP), 0);
    cr_assert(t::wait_ready_after(d, from), "no ready line after SIGHUP:\n%s", d.err_log.c_str());
    cr_assert_eq(d.generation, generation, "%s", d.ready_line.c_str());
}

std::string hex(const std::string& data) {
    return duet::to_hex(duet::Sha256::of(data));
}

// Reads up to and including the blank line of an HTTP head (a 100 Continue has no body).
std::string read_head(int fd) {
    std::string out;
    while (out.find("\r\n\r\n") == std::string::npos) {
        std::string c = t::read_n(fd, 1);
        if (c.empty()) break;
        out += c;
    }
    return out;
}

// Buffered line reads (a LIST of megabytes, read one byte per call, would take seconds).
class LineReader {
  public:
    explicit LineReader(int fd) : fd_(fd) {}
    std::string line(int timeout_ms = 20000) {
        std::int64_t deadline = t::now_ms() + timeout_ms;
        for (;;) {
            std::size_t lf = buf_.find('\n', at_);
            if (lf != std::string::npos) {
                std::string l = buf_.substr(at_, lf - at_);
                at_ = lf + 1;
                return l;
            }
            buf_.erase(0, at_);
            at_ = 0;
            char tmp[65536];
            ssize_t n = recv(fd_, tmp, sizeof tmp, 0);
            if (n <= 0 || t::now_ms() > deadline) return "";
            buf_.append(tmp, std::size_t(n));
        }
    }

  private:
    int fd_;
    std::string buf_;
    std::size_t at_ = 0;
};

// The reload schedule every client follows: a transfer moves its (step+1)/(kReloads+2) share,
// reports the step done, and waits for the next reload before moving on, so every reload finds
// every transfer half-way.
struct Schedule {
    std::atomic<int> allowed{0};  // steps clients may complete
    std::atomic<bool> abort{false};
    std::mutex mu;
    std::vector<std::string> errors;

    std::size_t share(std::size_t total, int step) const {
        return total * std::size_t(step + 1) / std::size_t(kReloads + 2);
    }
    // Waits until step `s` may run. false when the test gave up.
    bool wait_step(int s) {
        while (allowed.load() < s) {
            if (abort) return false;
            usleep(1000);
        }
        return true;
    }
    void error(const std::string& e) {
        std::lock_guard<std::mutex> l(mu);
        errors.push_back(e);
    }
};

using Client = std::function<void(Schedule&, std::atomic<int>&)>;

// Moves `total` bytes in per-step shares with `move(from, to)`; reports each step to `done`.
bool stepped(Schedule& s, std::atomic<int>& done, std::size_t total,
             const std::function<bool(std::size_t, std::size_t)>& move) {
    std::size_t at = 0;
    for (int step = 0; step <= kReloads + 1; ++step) {
        if (!s.wait_step(step)) return false;
        std::size_t to = step == kReloads + 1 ? total : s.share(total, step);
        if (to > at && !move(at, to)) return false;
        at = to;
        done = step + 1;
    }
    return true;
}

void finish_steps(Schedule& s, std::atomic<int>& done) {
    for (int step = done; step <= kReloads + 1; ++step) {
        if (!s.wait_step(step)) return;
        done = step + 1;
    }
}

}  // namespace

TestSuite(reload, .fini = cleanup, .timeout = 120);

Test(reload, every_connection_state_crosses_twenty_mixed_reloads) {
    // The store: one big file to download, many small ones so that a LIST outgrows the buffers.
    std::string base = tmpdir();
    std::string data = base + "/data";
    cr_assert_eq(mkdir(data.c_str(), 0755), 0);
    const std::string big = t::random_bytes(kDownload, 3);
    cr_assert(t::write_file(data + "/big", big));
    for (int i = 0; i < kListFiles; ++i) {
        char name[32];
        std::snprintf(name, sizeof name, "/f%05d", i);
        cr_assert(t::write_file(data + name + std::string(kNamePad, 'x'), name));
    }
    cr_assert(t::write_file(data + "/s1", "short1"));
    cr_assert(t::write_file(data + "/s2", "short2"));
    // A private copy of the binary, replaced under --reload for half of the reloads.
    std::string bin = base + "/bin";
    cr_assert_eq(mkdir(bin.c_str(), 0755), 0);
    std::string exe = bin + "/duet";
    int st = -1;
    t::sh("cp " + abs_path(t::duet_binary()) + " " + exe, &st);
    cr_assert_eq(st, 0);
    t::Duet d;
    launch(d, {"--reload", "--token", kToken, "--header-timeout", "60", "--grace", "30"}, data, {},
           exe);
    int hp = d.http_port, fp = d.files_port;

    Schedule sched;
    std::vector<Client> clients;
    auto fail = [&](const std::string& what) {
        sched.error(what);
        return false;
    };

    // HTTP downloads, read slowly.
    for (int i = 0; i < 8; ++i)
        clients.push_back([&, i](Schedule& s, std::atomic<int>& done) {
            int fd = t::connect_slow_reader(hp, 64 << 10);
            std::string name = "http download " + std::to_string(i);
            if (!t::send_all(fd, "GET /files/big HTTP/1.1\r\nHost: t\r\n" + kAuth + "\r\n"))
                return (void)fail(name + ": send");
            std::string head = read_head(fd);
            if (t::status_of(head) != 200) return (void)fail(name + ": head " + head);
            std::string got;
            stepped(s, done, big.size(), [&](std::size_t from, std::size_t to) {
                std::string part = t::read_n(fd, to - from, 20000);
                got += part;
                return part.size() == to - from ||
                       fail(name + ": short read at " + std::to_string(got.size()));
            });
            if (got.size() == big.size() && got != big) fail(name + ": bytes differ");
            // Keep-alive after the download: the same connection serves the next request.
            if (!t::send_all(fd, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n") ||
                t::status_of(t::read_response(fd)) != 200)
                fail(name + ": no keep-alive after the download");
            close(fd);
        });
    // File-port downloads, read slowly.
    for (int i = 0; i < 4; ++i)
        clients.push_back([&, i](Schedule& s, std::atomic<int>& done) {
            int fd = t::connect_slow_reader(fp, 64 << 10);
            std::string name = "file-port download " + std::to_string(i);
            t::send_all(fd, "AUTH tok\nGET big\n");
            if (t::read_line(fd) != "OK") return (void)fail(name + ": auth");
            std::string line = t::read_line(fd);
            if (line != "OK " + std::to_string(big.size()) + " " + hex(big))
                return (void)fail(name + ": " + line);
            std::string got;
            stepped(s, done, big.size(), [&](std::size_t from, std::size_t to) {
                std::string part = t::read_n(fd, to - from, 20000);
                got += part;
                return part.size() == to - from || fail(name + ": short read");
            });
            if (got.size() == big.size() && got != big) fail(name + ": bytes differ");
            t::send_all(fd, "PING\n");
            if (t::read_line(fd) != "OK pong") fail(name + ": session gone after the download");
            close(fd);
        });
    // HTTP uploads: sized and chunked, half of each asking for 100 Continue.
    for (int i = 0; i < 8; ++i)
        clients.push_back([&, i](Schedule& s, std::atomic<int>& done) {
            bool chunked = i % 2 == 1, expect = i / 2 % 2 == 1;
            std::string name = "http upload " + std::to_string(i);
            std::string content = t::random_bytes(kUpload + std::size_t(i) * 977, 100 + i);
            std::string wire;
            if (chunked) {
                for (std::size_t at = 0; at < content.size(); at += 7000) {
                    std::size_t n = std::min<std::size_t>(7000, content.size() - at);
                    char size[16];
                    std::snprintf(size, sizeof size, "%zx;x=y\r\n", n);
                    wire += size + content.substr(at, n) + "\r\n";
                }
                wire += "0\r\nTrailer: v\r\n\r\n";
            } else {
                wire = content;
            }
            // Uploads 0 and 1 carry their digest, upload 5 a wrong one: checked after the reloads.
            std::string digest;
            if (i == 0 || i == 1 || i == 5) {
                duet::Digest dg = duet::Sha256::of(i == 5 ? content + "x" : content);
                digest =
                    "Repr-Digest: sha-256=:" + duet::base64_encode(dg.data(), dg.size()) + ":\r\n";
            }
            int fd = t::connect_port(hp);
            std::string head =
                "PUT /files/hu" + std::to_string(i) + " HTTP/1.1\r\nHost: t\r\n" + kAuth + digest +
                (chunked ? "Transfer-Encoding: chunked\r\n"
                         : "Content-Length: " + std::to_string(wire.size()) + "\r\n") +
                (expect ? "Expect: 100-continue\r\n" : "") + "\r\n";
            if (!t::send_all(fd, head)) return (void)fail(name + ": send head");
            bool ok = stepped(s, done, wire.size(), [&](std::size_t from, std::size_t to) {
                if (expect && from == 0 && t::status_of(read_head(fd)) != 100)
                    return fail(name + ": no 100 Continue");
                return t::send_all(fd, wire.substr(from, to - from)) || fail(name + ": send");
            });
            if (!ok) return;
            std::string r = t::read_response(fd, false, 20000);
            if (i == 5 ? t::status_of(r) != 400
                       : t::status_of(r) != 201 ||
                             t::body_of(r).find(hex(content)) == std::string::npos)
                fail(name + ": answer " + r);
            close(fd);
        });
    // File-port uploads: sized with a digest, and unsized ended by a half-close.
    for (int i = 0; i < 4; ++i)
        clients.push_back([&, i](Schedule& s, std::atomic<int>& done) {
            bool sized = i % 2 == 0;
            std::string name = "file-port upload " + std::to_string(i);
            std::string content = t::random_bytes(kUpload + std::size_t(i) * 131, 200 + i);
            int fd = t::connect_port(fp);
            std::string cmd = "AUTH tok\nPUT fu" + std::to_string(i) +
                              (sized ? " " + std::to_string(content.size()) + " " + hex(content)
                                     : std::string()) +
                              "\n";
            t::send_all(fd, cmd);
            if (t::read_line(fd) != "OK") return (void)fail(name + ": auth");
            bool ok = stepped(s, done, content.size(), [&](std::size_t from, std::size_t to) {
                return t::send_all(fd, content.substr(from, to - from)) || fail(name + ": send");
            });
            if (!ok) return;
            if (!sized) shutdown(fd, SHUT_WR);
            std::string line = t::read_line(fd, 20000);
            if (line != "OK " + std::to_string(content.size()) + " " + hex(content))
                fail(name + ": " + line);
            close(fd);
        });
    // Half a request head, the rest after the reloads.
    for (int i = 0; i < 4; ++i)
        clients.push_back([&, i](Schedule& s, std::atomic<int>& done) {
            std::string name = "half head " + std::to_string(i);
            int fd = t::connect_port(hp);
            std::string req = "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Pad: " +
                              std::string(std::size_t(i) * 100, 'p') + "\r\n\r\n";
            std::size_t cut = req.size() / 2;
            t::send_all(fd, req.substr(0, cut));
            finish_steps(s, done);
            t::send_all(fd, req.substr(cut));
            std::string r = t::read_response(fd);
            if (t::status_of(r) != 200 || t::body_of(r) != "ok\n") fail(name + ": " + r);
            close(fd);
        });
    // Half a command line on an authenticated session; the rest after the reloads.
    for (int i = 0; i < 4; ++i)
        clients.push_back([&, i](Schedule& s, std::atomic<int>& done) {
            std::string name = "half line " + std::to_string(i);
            int fd = t::connect_port(fp);
            t::send_all(fd, "AUTH tok\nST");
            if (t::read_line(fd) != "OK") return (void)fail(name + ": auth");
            finish_steps(s, done);
            t::send_all(fd, "AT s1\nSTAT s2\n");
            std::string a = t::read_line(fd), b = t::read_line(fd);
            if (!a.starts_with("OK 6 ") || !b.starts_with("OK 6 "))
                fail(name + ": AUTH or the line was lost: " + a + " / " + b);
            close(fd);
        });
    // Idle keep-alive connections.
    for (int i = 0; i < 4; ++i)
        clients.push_back([&, i](Schedule& s, std::atomic<int>& done) {
            std::string name = "keep-alive " + std::to_string(i);
            int fd = t::connect_port(hp);
            t::send_all(fd, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
            if (t::status_of(t::read_response(fd)) != 200) return (void)fail(name + ": first");
            finish_steps(s, done);
            t::send_all(fd, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
            std::string r = t::read_response(fd);
            if (r.find("\"generation\":" + std::to_string(kReloads)) == std::string::npos)
                fail(name + ": " + r);
            close(fd);
        });
    // Paused LISTs: the client reads a share of the lines per reload.
    for (int i = 0; i < 4; ++i)
        clients.push_back([&, i](Schedule& s, std::atomic<int>& done) {
            std::string name = "list " + std::to_string(i);
            int fd = t::connect_slow_reader(fp, 8192);
            t::send_all(fd, "AUTH tok\nLIST\n");
            LineReader in(fd);
            if (in.line() != "OK") return (void)fail(name + ": auth");
            std::string count = in.line();
            std::size_t n = std::size_t(std::atoll(count.c_str() + 3));
            if (!count.starts_with("OK ") || n < std::size_t(kListFiles))
                return (void)fail(name + ": " + count);
            std::vector<std::string> lines;
            stepped(s, done, n, [&](std::size_t from, std::size_t to) {
                for (std::size_t k = from; k < to; ++k) {
                    std::string l = in.line();
                    if (l.empty()) return fail(name + ": line " + std::to_string(k) + " lost");
                    lines.push_back(l.substr(0, l.find(' ')));
                }
                return true;
            });
            if (!std::is_sorted(lines.begin(), lines.end()) ||
                std::adjacent_find(lines.begin(), lines.end()) != lines.end())
                fail(name + ": lines out of order or repeated");
            t::send_all(fd, "PING\n");
            std::string pong = in.line();
            if (pong != "OK pong") fail(name + ": after the listing: " + pong);
            close(fd);
        });

    std::vector<std::atomic<int>> progress(clients.size());
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < clients.size(); ++i)
        threads.emplace_back([&, i] {
            clients[i](sched, progress[i]);
            progress[i] = kReloads + 100;  // finished (or failed): never waited for again
        });
    // Fresh connections during the reloads: never an error, whatever the answer.
    std::atomic<bool> stop_probe{false};
    std::atomic<int> probes{0}, probe_errors{0};
    std::atomic<std::int64_t> probe_max{0};
    std::thread probe([&] {
        while (!stop_probe) {
            std::int64_t t0 = t::now_ms();
            std::string r = t::http(hp, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
            std::int64_t took = t::now_ms() - t0;
            int status = t::status_of(r);
            if (status != 200 && status != 503) ++probe_errors;
            ++probes;
            if (took > probe_max) probe_max = took;
            usleep(5000);
        }
    });

    auto all_reached = [&](int step) {
        std::int64_t deadline = t::now_ms() + 30000;
        for (auto& p : progress)
            while (p.load() < step && t::now_ms() < deadline) usleep(1000);
        for (auto& p : progress)
            if (p.load() < step) return false;
        return true;
    };
    std::int64_t reload_ms_max = 0;
    for (int g = 1; g <= kReloads && sched.errors.empty(); ++g) {
        cr_assert(all_reached(g), "clients stuck before reload %d", g);
        std::size_t from = d.err_log.size();
        std::int64_t t0 = t::now_ms();
        if (g % 2 == 0) {
            // A replaced binary, as a linker or `cp` does it.
            t::sh("cp -f " + abs_path(t::duet_binary()) + " " + exe, &st);
            cr_assert_eq(st, 0);
        } else {
            cr_assert_eq(kill(d.pid, SIGHUP), 0);
        }
        cr_assert(t::wait_ready_after(d, from), "reload %d: no ready line:\n%s", g,
                  d.err_log.c_str());
        reload_ms_max = std::max(reload_ms_max, t::now_ms() - t0);
        cr_assert_eq(d.generation, g, "%s", d.ready_line.c_str());
        sched.allowed = g;
    }
    if (!sched.errors.empty()) sched.abort = true;
    sched.allowed = kReloads + 1;
    for (auto& th : threads) th.join();
    stop_probe = true;
    probe.join();
    std::fprintf(stderr,
                 "reload: %d reloads with %zu connections in flight: slowest %lld ms (ASan, "
                 "including the check and, for a replaced binary, the 150 ms quiet); %d fresh "
                 "/healthz, %d errors, slowest %lld ms\n",
                 kReloads, clients.size(), static_cast<long long>(reload_ms_max), int(probes),
                 int(probe_errors), static_cast<long long>(probe_max.load()));
    for (auto& e : sched.errors) std::fprintf(stderr, "reload: FAILED %s\n", e.c_str());
    cr_assert(sched.errors.empty(), "%zu client(s) failed, first: %s", sched.errors.size(),
              sched.errors.empty() ? "" : sched.errors[0].c_str());
    cr_assert_eq(probe_errors, 0);
    cr_assert_eq(d.err_log.find("cannot be read"), std::string::npos, "%s", d.err_log.c_str());
    cr_assert_eq(d.err_log.find("draining"), std::string::npos, "a reload waited:\n%s",
                 d.err_log.c_str());
    cr_assert_eq(t::stop(d), 0);
}

Test(reload, never_waits_for_grace_with_a_download_in_flight) {
    std::string data = tmpdir() + "/data";
    cr_assert_eq(mkdir(data.c_str(), 0755), 0);
    std::string big = t::random_bytes(kDownload, 9);
    cr_assert(t::write_file(data + "/big", big));
    t::Duet d;
    launch(d, {"--grace", "30"}, data);
    int fd = t::connect_slow_reader(d.http_port, 64 << 10);
    cr_assert(t::send_all(fd, "GET /files/big HTTP/1.1\r\nHost: t\r\n\r\n"));
    cr_assert_eq(t::status_of(read_head(fd)), 200);
    std::string got = t::read_n(fd, 256 << 10);
    std::int64_t t0 = t::now_ms();
    reload_by_signal(d, 1);
    std::int64_t took = t::now_ms() - t0;
    // A drain would wait for the download (--grace 30): the hand-over does not.
    cr_assert_lt(took, 8000, "the reload took %lld ms", static_cast<long long>(took));
    got += t::read_n(fd, big.size() - got.size(), 20000);
    cr_assert(got == big, "download differs after the reload (%zu bytes)", got.size());
    close(fd);
    cr_assert_eq(t::stop(d), 0);
}

Test(reload, a_half_head_keeps_its_header_deadline_across_a_reload) {
    t::Duet d;
    launch(d, {"--header-timeout", "4"});
    std::int64_t t0 = t::now_ms();
    int fd = t::connect_port(d.http_port);
    cr_assert(t::send_all(fd, "GET /healthz HTTP/1.1\r\nHo"));
    // Half-way through the 4 s, reload: the deadline crosses as "2 s left", not a fresh 4 s.
    cr_assert_not(t::peer_closed(fd, 2000));
    reload_by_signal(d, 1);
    std::string r = t::read_all(fd, 10000);
    std::int64_t took = t::now_ms() - t0;
    cr_assert_eq(t::status_of(r), 408, "%s", r.c_str());
    cr_assert_lt(took, 5500, "408 after %lld ms: the header deadline restarted at the reload",
                 static_cast<long long>(took));
    cr_assert_geq(took, 3900);
    close(fd);
    cr_assert_eq(t::stop(d), 0);
}

Test(reload, a_session_parked_by_the_guessing_throttle_crosses_with_its_pipelined_lines) {
    t::Duet d;
    launch(d, {"--token", "right"});
    int fd = t::connect_port(d.files_port);
    // Eight bad tokens in one write: five are answered at once, the sixth waits 200 ms, the
    // seventh 400 ms more... so the session is parked, with lines still unread, at the reload.
    std::string wrong;
    for (int i = 0; i < 8; ++i) wrong += "AUTH wrong\n";
    cr_assert(t::send_all(fd, wrong + "AUTH right\nPING\n"));
    for (int i = 0; i < 5; ++i) cr_assert_eq(t::read_line(fd), "ERR 401 bad token", "answer %d", i);
    reload_by_signal(d, 1);
    for (int i = 5; i < 8; ++i) cr_assert_eq(t::read_line(fd), "ERR 401 bad token", "answer %d", i);
    cr_assert_eq(t::read_line(fd), "OK");
    cr_assert_eq(t::read_line(fd), "OK pong");
    close(fd);
    cr_assert_eq(t::stop(d), 0);
}

Test(reload, new_image_reading_another_format_gets_a_drain_and_a_log_line) {
    std::string data = tmpdir() + "/data";
    cr_assert_eq(mkdir(data.c_str(), 0755), 0);
    std::string big = t::random_bytes(kDownload, 11);
    cr_assert(t::write_file(data + "/big", big));
    t::Duet d;
    // The test hook makes every --check report hand-over format 7 only.
    launch(d, {"--grace", "20"}, data, {"DUET_TEST_HANDOVER_VERSIONS=7"});
    int idle = t::connect_port(d.http_port);
    cr_assert(t::send_all(idle, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"));
    cr_assert_eq(t::status_of(t::read_response(idle)), 200);
    int fd = t::connect_slow_reader(d.http_port, 64 << 10);
    cr_assert(t::send_all(fd, "GET /files/big HTTP/1.1\r\nHost: t\r\n\r\n"));
    std::string head = read_head(fd);
    cr_assert_eq(t::status_of(head), 200);
    std::string got = t::read_n(fd, 256 << 10);
    std::size_t from = d.err_log.size();
    cr_assert_eq(kill(d.pid, SIGHUP), 0);
    cr_assert(t::wait_log(d, "reads hand-over format(s) 7, not 1", 10000), "no log line:\n%s",
              d.err_log.c_str());
    // Draining: the reload waits for the download, which completes under the old rules.
    cr_assert_not(t::parse_ready(d, from), "reloaded before the download finished");
    got += t::read_n(fd, big.size() - got.size(), 20000);
    cr_assert(got == big, "download differs (%zu bytes)", got.size());
    cr_assert(t::wait_ready_after(d, from), "no reload after the drain:\n%s", d.err_log.c_str());
    cr_assert_eq(d.generation, 1);
    // Once done, the download's connection went over idle, the old way, as did the idle one.
    cr_assert(t::send_all(fd, "GET / HTTP/1.1\r\nHost: t\r\n\r\n"));
    cr_assert(t::read_response(fd).find("\"generation\":1") != std::string::npos);
    cr_assert(t::send_all(idle, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"));
    cr_assert_eq(t::status_of(t::read_response(idle)), 200);
    close(fd);
    close(idle);
    cr_assert_eq(t::stop(d), 0);
}

Test(reload, a_corrupted_record_closes_one_connection_and_the_process_lives) {
    t::Duet d;
    launch(d, {}, "", {"DUET_TEST_CORRUPT_HANDOVER=2"});
    int fds[3];
    for (int& fd : fds) {
        fd = t::connect_port(d.http_port);
        cr_assert(t::send_all(fd, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"));
        cr_assert_eq(t::status_of(t::read_response(fd)), 200);
    }
    reload_by_signal(d, 1);
    cr_assert(t::wait_log(d, "hand-over record 2 cannot be read", 2000), "%s", d.err_log.c_str());
    cr_assert(t::wait_log(d, "1 refused", 2000), "%s", d.err_log.c_str());
    int alive = 0, closed = 0;
    for (int fd : fds) {
        if (t::peer_closed(fd, 300)) {
            ++closed;
            continue;
        }
        cr_assert(t::send_all(fd, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"));
        if (t::status_of(t::read_response(fd)) == 200) ++alive;
    }
    cr_assert_eq(closed, 1);
    cr_assert_eq(alive, 2);
    // The hook corrupts one hand-over only: the next reload carries the survivors intact.
    reload_by_signal(d, 2);
    for (int fd : fds) {
        if (!t::send_all(fd, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")) continue;
        std::string r = t::read_response(fd, false, 2000);
        if (!r.empty()) cr_assert_eq(t::status_of(r), 200);
    }
    cr_assert_eq(t::http(d.http_port, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").find("200"), 9u);
    cr_assert_eq(t::stop(d), 0);
}

namespace {
std::size_t fd_count_now(pid_t pid) {
    std::size_t n = 0;
    std::error_code ec;
    for (auto it = fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
         !ec && it != fs::directory_iterator(); ++it)
        ++n;
    return n;
}
// The fewest fds over a few looks 5 ms apart: a new image's index build holds a folder or two
// open for a moment, which is not a leak (a leak never goes away).
std::size_t fd_count(pid_t pid) {
    std::size_t least = fd_count_now(pid);
    for (int i = 0; i < 10; ++i) {
        usleep(5000);
        least = std::min(least, fd_count_now(pid));
    }
    return least;
}
long rss_kib_now(pid_t pid) {
    std::string s = t::read_file("/proc/" + std::to_string(pid) + "/status");
    std::size_t at = s.find("VmRSS:");
    return at == std::string::npos ? -1 : std::atol(s.c_str() + at + 6);
}
// The least RSS over a few looks 5 ms apart, for the same reason: on a busy machine an upload's
// buffers still in its pipe, or a new image's index build, come and go (a leak stays).
long rss_kib(pid_t pid) {
    long least = rss_kib_now(pid);
    for (int i = 0; i < 10; ++i) {
        usleep(5000);
        least = std::min(least, rss_kib_now(pid));
    }
    return least;
}
}  // namespace

Test(reload, fds_and_memory_stay_flat_over_200_reloads_with_work_in_flight) {
    // The optimised binary: 200 execs of the ASan one would not fit the test's time.
    std::string bin = abs_path("build/duet");
    std::string data = tmpdir() + "/data";
    cr_assert_eq(mkdir(data.c_str(), 0755), 0);
    std::string big = t::random_bytes(kDownload, 13);
    cr_assert(t::write_file(data + "/big", big));
    t::Duet d;
    // The half command line's deadline runs across the reloads: 200 of them on a busy machine
    // can take longer than the default 10 s.
    launch(d, {"--header-timeout", "120"}, data, {}, bin);
    // In flight throughout: a download read slowly, an upload trickling, a half head, idle ones.
    int dl = t::connect_slow_reader(d.http_port, 64 << 10);
    cr_assert(t::send_all(dl, "GET /files/big HTTP/1.1\r\nHost: t\r\n\r\n"));
    cr_assert_eq(t::status_of(read_head(dl)), 200);
    std::string content = t::random_bytes(400000, 17);
    int up = t::connect_port(d.http_port);
    cr_assert(t::send_all(up, "PUT /files/up HTTP/1.1\r\nHost: t\r\nContent-Length: " +
                                  std::to_string(content.size()) + "\r\n\r\n"));
    int half = t::connect_port(d.files_port);
    cr_assert(t::send_all(half, "PI"));
    int idle[4];
    for (int& fd : idle) {
        fd = t::connect_port(d.http_port);
        cr_assert(t::send_all(fd, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"));
        cr_assert_eq(t::status_of(t::read_response(fd)), 200);
    }
    std::string got;
    std::size_t fds_at_20 = 0;
    long rss_at_20 = LONG_MAX, rss_end = LONG_MAX;
    for (int g = 1; g <= 200; ++g) {
        reload_by_signal(d, g);
        got += t::read_n(dl, 8 << 10);
        // The upload's last bytes go after the loop: it stays open (its fd counted) until then.
        std::size_t at = content.size() * std::size_t(g - 1) / 201;
        std::size_t to = content.size() * std::size_t(g) / 201;
        cr_assert(t::send_all(up, content.substr(at, to - at)));
        // Each image starts from a fresh address space, so only what the hand-over carries could
        // grow: the least RSS over reloads 11-20 against the least over 191-200 (one look can
        // catch an image with an upload's buffers in flight on a busy machine).
        if (g > 10 && g <= 20) rss_at_20 = std::min(rss_at_20, rss_kib(d.pid));
        if (g > 190) rss_end = std::min(rss_end, rss_kib(d.pid));
        if (g == 20) fds_at_20 = fd_count(d.pid);
    }
    std::size_t fds_end = fd_count(d.pid);
    std::fprintf(stderr,
                 "note: reload: after 20 reloads %zu fds %ld KiB, after 200 %zu fds %ld KiB\n",
                 fds_at_20, rss_at_20, fds_end, rss_end);
    cr_assert_eq(fds_end, fds_at_20, "fds grew over 180 reloads");
    cr_assert_lt(rss_end, rss_at_20 + 512, "RSS grew over 180 reloads");
    cr_assert(t::send_all(up, content.substr(content.size() * 200 / 201)));
    std::string r = t::read_response(up, false, 10000);
    cr_assert_eq(t::status_of(r), 201, "%s", r.c_str());
    cr_assert(t::body_of(r).find(hex(content)) != std::string::npos, "%s", r.c_str());
    got += t::read_n(dl, big.size() - got.size(), 20000);
    cr_assert(got == big, "download differs (%zu bytes)", got.size());
    cr_assert(t::send_all(half, "NG\n"));
    cr_assert_eq(t::read_line(half), "OK pong");
    for (int fd : idle) {
        cr_assert(t::send_all(fd, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"));
        cr_assert_eq(t::status_of(t::read_response(fd)), 200);
    }
    cr_assert_eq(t::stop(d), 0);
}

// Resumable-upload appends in flight cross too (issue 12 with issue 11): a tus PATCH with an
// Upload-Checksum (all or nothing: nothing durable before its end) and a file-port RESUME are
// half sent at the SIGHUP, finished after it on the same connections, and publish the right
// bytes with the right digest.
Test(reload, resumable_appends_in_flight_cross_a_reload) {
    t::Duet d;
    launch(d, {});
    const std::string a = t::random_bytes(600000, 21), b = t::random_bytes(500000, 22);
    // tus: create, then a PATCH of everything, cut at a third.
    int h = t::connect_port(d.http_port);
    std::string name64 = duet::base64_encode(reinterpret_cast<const std::uint8_t*>("t.bin"), 5);
    cr_assert(t::send_all(h,
                          "POST /uploads HTTP/1.1\r\nHost: t\r\nTus-Resumable: 1.0.0\r\n"
                          "Upload-Length: " +
                              std::to_string(a.size()) + "\r\nUpload-Metadata: filename " + name64 +
                              "\r\nContent-Length: 0\r\n\r\n"));
    std::string created = read_head(h);
    cr_assert_eq(t::status_of(created), 201, "%s", created.c_str());
    std::string loc = t::header_of(created, "Location");
    duet::Digest sum = duet::Sha256::of(a);
    std::string sum64 = duet::base64_encode(sum.data(), sum.size());
    cr_assert(t::send_all(h, "PATCH " + loc +
                                 " HTTP/1.1\r\nHost: t\r\nTus-Resumable: 1.0.0\r\n"
                                 "Content-Type: application/offset+octet-stream\r\n"
                                 "Upload-Offset: 0\r\nExpect: 100-continue\r\n"
                                 "Upload-Checksum: sha256 " +
                                 sum64 + "\r\nContent-Length: " + std::to_string(a.size()) +
                                 "\r\n\r\n"));
    // The 100 says the append has begun; whether its first bytes are read before the reload
    // or after, they cross with it.
    std::string cont = read_head(h);
    cr_assert_eq(t::status_of(cont), 100, "%s", cont.c_str());
    cr_assert(t::send_all(h, a.substr(0, 200000)));
    // File port: a sized PUT cut at 100000 keeps a partial; RESUME it and send part of the rest.
    int f = t::connect_port(d.files_port);
    cr_assert(t::send_all(f, "PUT r.bin " + std::to_string(b.size()) + "\n" + b.substr(0, 100000)));
    shutdown(f, SHUT_WR);
    cr_assert_eq(t::read_line(f), "ERR 400 short upload: got 100000 of 500000 bytes, partial kept");
    close(f);
    f = t::connect_port(d.files_port);
    cr_assert(t::send_all(f, "RESUME r.bin " + std::to_string(b.size()) + "\n"));
    cr_assert_eq(t::read_line(f), "OK 100000");
    cr_assert(t::send_all(f, b.substr(100000, 150000)));
    reload_by_signal(d, 1);
    cr_assert(t::send_all(h, a.substr(200000)));
    std::string r = read_head(h);
    cr_assert_eq(t::status_of(r), 204, "%s", r.c_str());
    cr_assert_eq(t::header_of(r, "Upload-Offset"), std::to_string(a.size()));
    cr_assert(t::send_all(f, b.substr(250000)));
    std::string done = t::read_line(f);
    cr_assert_eq(done, "OK " + std::to_string(b.size()) + " " + hex(b), "%s\n%s", done.c_str(),
                 d.err_log.c_str());
    close(f);
    close(h);
    f = t::connect_port(d.files_port);
    cr_assert(t::send_all(f, "STAT t.bin\n"));
    std::string st = t::read_line(f);
    cr_assert(st.rfind("OK " + std::to_string(a.size()) + " " + hex(a), 0) == 0, "%s", st.c_str());
    close(f);
    cr_assert_eq(t::stop(d), 0);
}

// Reloads while an append's checkpoints run on helpers (README "Limits"): the hand-over waits for
// the checkpoint in flight (and starts no new one meanwhile), so the next image loads the state
// file this one announced and takes the append on from there. 48 MiB in four pieces, a SIGHUP after
// each: each piece crosses the 16 MiB checkpoint mark, so a reload lands while one is in flight.
// Every 104 reports a growing offset, the answer the whole upload, and the file is the source:
// no byte lost, none counted twice.
Test(reload, ietf_append_crosses_reloads_with_checkpoints_in_flight) {
    t::Duet d;
    launch(d, {});
    const std::string data = t::random_bytes(48 << 20, 23);
    int h = t::connect_port(d.http_port);
    cr_assert(t::send_all(
        h,
        "POST /files/ck.bin HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(data.size()) +
            "\r\nUpload-Complete: ?1\r\nUpload-Draft-Interop-Version: 6\r\n\r\n"));
    const std::size_t piece = data.size() / 4;
    for (int i = 0; i < 4; ++i) {
        cr_assert(t::send_all(h, data.substr(i * piece, piece)));
        if (i < 3) reload_by_signal(d, i + 1);
    }
    std::uint64_t last = 0;
    std::string r;
    for (int i = 0; i < 100; ++i) {
        r = read_head(h);
        int st = t::status_of(r);
        if (st != 104) break;
        std::string off = t::header_of(r, "Upload-Offset");
        if (off.empty()) continue;  // the first 104 says where the upload is (Location)
        std::uint64_t v = std::strtoull(off.c_str(), nullptr, 10);
        cr_expect(v > last && v <= data.size(), "104 offsets %llu then %llu",
                  (unsigned long long)last, (unsigned long long)v);
        last = v;
    }
    cr_assert_eq(t::status_of(r), 201, "%s\n%s", r.c_str(), d.err_log.c_str());
    close(h);
    cr_assert_eq(t::read_file(d.data_dir + "/ck.bin").size(), data.size());
    cr_assert(t::read_file(d.data_dir + "/ck.bin") == data, "the stored file differs");
    cr_assert_eq(t::stop(d), 0);
}
