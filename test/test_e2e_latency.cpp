// README "Limits" black-box: the loop never waits. A huge file being hashed, 200 clients listing
// 10,000 files, an access log nobody reads, a store directory that goes away, no file descriptors
// left: /healthz stays fast (measured from the client), signals act at once, and every answer is
// the documented one. Latency bounds are the issue's, generous for a loaded 2-core machine.
#include <criterion/criterion.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "helper.hpp"

namespace {

std::string g_dir;  // the test's temporary directory; the store is g_dir/data
std::string g_shm;  // a directory under /dev/shm to remove at the end

void fini() {
    t::teardown();
    if (g_shm.rfind("/dev/shm/duet-test-", 0) == 0 || g_shm.rfind("/tmp/duet-test-", 0) == 0)
        t::sh("rm -rf '" + g_shm + "'");
}

void boot_with(std::vector<std::string> args, const std::string& binary) {
    g_dir = t::make_tmpdir();
    cr_assert(!g_dir.empty());
    t::remove_at_teardown(g_dir);
    bool ok = t::start(t::served, std::move(args), g_dir + "/data", {}, binary);
    cr_assert(ok, "server did not start: %s", t::served.err_log.c_str());
}

std::string req(const std::string& method, const std::string& path, const std::string& fields = "",
                const std::string& body = "") {
    return method + " " + path + " HTTP/1.1\r\nHost: t\r\n" + fields + "\r\n" + body;
}

std::string http(const std::string& raw, bool head_only = false) {
    return t::http(t::served.http_port, raw, head_only);
}

// One command line on a fresh file-port session: the first answer line.
std::string files_cmd(const std::string& line, int timeout_ms = 10000) {
    int fd = t::connect_port(t::served.files_port);
    cr_assert(fd >= 0);
    t::send_all(fd, line + "\n");
    std::string out = t::read_line(fd, timeout_ms);
    close(fd);
    return out;
}

// /healthz from a second client (one keep-alive connection), every ~5 ms for `ms`: the latency
// of each request in microseconds.
std::vector<std::int64_t> probe_health(int ms) {
    std::vector<std::int64_t> lat;
    int fd = t::connect_port(t::served.http_port);
    cr_assert(fd >= 0);
    std::int64_t end = t::now_ms() + ms;
    while (t::now_ms() < end) {
        timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        t::send_all(fd, req("GET", "/healthz"));
        std::string r = t::read_response(fd);
        clock_gettime(CLOCK_MONOTONIC, &b);
        cr_assert_eq(t::status_of(r), 200, "healthz: %s", r.c_str());
        lat.push_back((b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) / 1000);
        usleep(5000);
    }
    close(fd);
    std::sort(lat.begin(), lat.end());
    return lat;
}

// The bounds: max < 50 ms always, and p99 < 10 ms where it asks for one.
void assert_fast(const std::vector<std::int64_t>& lat, const char* during, bool p99_too = true) {
    cr_assert(lat.size() > 20, "too few probes");
    std::int64_t p99 = lat[lat.size() * 99 / 100], max = lat.back();
    cr_assert((!p99_too || p99 < 10000) && max < 50000,
              "%s: /healthz p99 %lld us, max %lld us over %zu probes", during, (long long)p99,
              (long long)max, lat.size());
}

long metric(const std::string& name) {
    std::string m = t::body_of(http(req("GET", "/metrics")));
    std::size_t at = m.find("\n" + name + " ");
    return at == std::string::npos ? -1 : std::atol(m.c_str() + at + name.size() + 2);
}

std::string sha256sum(const std::string& path) {
    return t::sh("sha256sum '" + path + "' | cut -c1-64 | tr -d '\\n'");
}

}  // namespace

TestSuite(e2e_responsive, .fini = fini, .timeout = 60);

// The first symptom: `truncate -s 8G data/huge.img`, then STAT huge.img, stalled the
// loop for 16.7 s and a SIGTERM for half a minute.
Test(e2e_responsive, hashing_an_8_gib_file_stalls_nothing_and_sigterm_is_quick) {
    std::string dir = t::make_tmpdir();
    t::remove_at_teardown(dir);
    t::sh("mkdir -p '" + dir + "/data' && truncate -s 8G '" + dir + "/data/huge.img'");
    cr_assert(t::start(t::served, {}, dir + "/data", {}, t::timing_binary()));
    // A client waits for the digest (parked; it must not hold up anyone else).
    int waiter = t::connect_port(t::served.files_port);
    cr_assert(waiter >= 0);
    t::send_all(waiter, "STAT huge.img\n");
    assert_fast(probe_health(3000), "hashing 8 GiB");
    cr_assert_eq(metric("duet_store_digests_pending"), 1, "the hash should still be running");
    timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    kill(t::served.pid, SIGTERM);
    int rc = t::wait_exit(t::served, 5000);
    clock_gettime(CLOCK_MONOTONIC, &b);
    long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
    cr_assert_eq(rc, 0, "exit status %d: %s", rc, t::served.err_log.c_str());
    cr_assert(ms < 100, "SIGTERM took %ld ms", ms);
    // The waiting client was told, not cut off silently.
    cr_assert_eq(t::read_line(waiter, 2000), "ERR 503 shutting down");
    close(waiter);
}

// A file copied in by hand gets its digest computed off the loop; once ready it is the right
// one on both ports, and listings show it. (Smaller than 8 GiB to keep the suite quick.)
Test(e2e_responsive, a_file_copied_in_is_listed_with_its_correct_digest) {
    boot_with({}, t::duet_binary());
    std::string src = g_dir + "/big.iso";
    t::write_file(src, t::random_bytes(3 << 20, 7));
    t::sh("truncate -s 64M '" + src + "' && printf tail >> '" + src + "'");
    std::string want = sha256sum(src);
    cr_assert_eq(want.size(), 64u);
    t::sh("cp '" + src + "' '" + g_dir + "/data/big.iso'");
    // STAT waits for the digest alone; the answer is the whole file's digest.
    std::string stat = files_cmd("STAT big.iso", 30000);
    cr_assert(stat.rfind("OK " + std::to_string((64 << 20) + 4) + " " + want, 0) == 0, "%s",
              stat.c_str());
    std::string list = t::body_of(http(req("GET", "/files")));
    cr_assert(list.find("\"name\":\"big.iso\",\"size\":67108868,\"sha256\":\"" + want + "\"") !=
                  std::string::npos,
              "%s", list.c_str());
    std::string get = http(req("HEAD", "/files/big.iso"), true);
    cr_assert_eq(t::header_of(get, "ETag"), "\"" + want + "\"");
    // Edited in place by hand: the new digest replaces the old one.
    t::sh("printf more >> '" + g_dir + "/data/big.iso'");
    t::sh("printf more >> '" + src + "'");
    want = sha256sum(src);
    stat = files_cmd("STAT big.iso", 30000);
    cr_assert(stat.find(want) != std::string::npos, "%s vs %s", stat.c_str(), want.c_str());
    // Removed by hand: gone from listings (the watch sees it; bounded wait, no sleep loop
    // beyond the event's arrival).
    t::sh("rm '" + g_dir + "/data/big.iso'");
    std::int64_t until = t::now_ms() + 5000;
    while (t::now_ms() < until &&
           t::body_of(http(req("GET", "/files"))).find("big.iso") != std::string::npos)
        usleep(10000);
    cr_assert_eq(t::body_of(http(req("GET", "/files"))), "[]\n");
    cr_assert_eq(files_cmd("LIST"), "OK 0");
}

// 10,000 files and 200 clients listing them at once: one render, shared; /healthz unmoved.
Test(e2e_responsive, two_hundred_clients_listing_ten_thousand_files_do_not_stall_healthz) {
    // In memory when /dev/shm is there: creating and removing 10,000 files on a busy disk
    // would take longer than the whole test.
    char tmpl[] = "/dev/shm/duet-test-XXXXXX";
    std::string dir = mkdtemp(tmpl) ? std::string(tmpl) : t::make_tmpdir();
    g_shm = dir;
    std::string data = dir + "/data";
    mkdir(data.c_str(), 0755);
    for (int i = 0; i < 10000; ++i) {
        char name[64];
        std::snprintf(name, sizeof name, "%s/file-%05d.txt", data.c_str(), i);
        int fd = open(name, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        cr_assert(fd >= 0);
        cr_assert_eq(write(fd, name, 16), 16);
        close(fd);
    }
    cr_assert(t::start(t::served, {}, data, {}, t::timing_binary()));
    // The first listing waits for the index (10,000 digests computed on helper threads).
    std::string first = http(req("GET", "/files"));
    cr_assert_eq(t::status_of(first), 200);
    std::string body = t::body_of(first);
    cr_assert_eq(std::count(body.begin(), body.end(), '{'), 10000);
    t::pin_apart(t::served.pid);  // before the crowd's thread starts: it inherits CPU 1
    // Every client gets the same bytes: read them with poll() into one scratch buffer, so the
    // test's own CPU stays small next to the server's.
    const std::size_t whole = first.size();
    std::atomic<bool> failed{false};
    std::atomic<int> done{0};
    std::thread crowd([&] {
        std::vector<pollfd> fds;
        std::vector<std::size_t> got;
        std::string r = req("GET", "/files");
        for (int i = 0; i < 200; ++i) {
            int fd = t::connect_port(t::served.http_port);
            if (fd < 0 || !t::send_all(fd, r)) {
                failed = true;
                continue;
            }
            fds.push_back({fd, POLLIN, 0});
            got.push_back(0);
        }
        static char sink[1 << 16];
        std::int64_t deadline = t::now_ms() + 30000;
        while (done.load() + 0 < int(fds.size()) && t::now_ms() < deadline) {
            if (poll(fds.data(), fds.size(), 100) <= 0) continue;
            for (std::size_t i = 0; i < fds.size(); ++i) {
                if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
                ssize_t n = recv(fds[i].fd, sink, sizeof sink, MSG_DONTWAIT);
                if (n > 0) got[i] += std::size_t(n);
                if (n == 0 || got[i] >= whole) {
                    if (got[i] != whole) failed = true;
                    close(fds[i].fd);
                    fds[i].fd = -1;
                    ++done;
                }
            }
        }
    });
    std::vector<std::int64_t> lat = probe_health(2000);
    crowd.join();  // before any assertion: the thread uses this stack frame
    std::fprintf(stderr, "note: 200 clients listing 10,000 files: /healthz max %lld us\n",
                 (long long)lat.back());
    assert_fast(lat, "200 clients listing 10,000 files", false);  // the issue asks max < 50 ms
    cr_assert(!failed, "a listing client failed");
    cr_assert_eq(done.load(), 200);
}

// --access-log into a pipe nobody reads: lines are dropped and counted, service goes on, the
// stop works, and the reader is told how many lines it missed once it catches up.
Test(e2e_responsive, an_unread_access_log_pipe_costs_lines_not_service) {
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    int saved = dup(1);
    dup2(p[1], 1);  // the server inherits this stdout
    g_dir = t::make_tmpdir();
    t::remove_at_teardown(g_dir);
    bool ok = t::start(t::served, {"--access-log"}, g_dir + "/data", {}, t::timing_binary());
    dup2(saved, 1);
    close(saved);
    close(p[1]);
    cr_assert(ok);
    // ~2.6 MiB of log lines (long targets make few requests enough): more than the pipe
    // (64 KiB) and the server's buffer (1 MiB) hold.
    int fd = t::connect_port(t::served.http_port);
    std::string batch;
    for (int i = 0; i < 500; ++i) batch += req("GET", "/" + std::string(1000, 'x'));
    for (int round = 0; round < 5; ++round) {
        cr_assert(t::send_all(fd, batch));
        for (int i = 0; i < 500; ++i) cr_assert_eq(t::status_of(t::read_response(fd)), 404);
    }
    close(fd);
    assert_fast(probe_health(1000), "access log stalled");
    long dropped = metric("duet_log_lines_dropped_total");
    cr_assert(dropped > 0, "dropped %ld", dropped);
    // The reader catches up: it gets whole lines, then the count of those it missed.
    std::string got;
    std::int64_t until = t::now_ms() + 10000;
    int fl = fcntl(p[0], F_GETFL);
    fcntl(p[0], F_SETFL, fl | O_NONBLOCK);
    while (t::now_ms() < until && got.find("log lines dropped") == std::string::npos) {
        char buf[65536];
        ssize_t n = read(p[0], buf, sizeof buf);
        if (n > 0)
            got.append(buf, std::size_t(n));
        else
            usleep(2000);
    }
    cr_assert(got.find("\nduet: ") != std::string::npos &&
                  got.find(" log lines dropped\n") != std::string::npos,
              "no drop note in %zu bytes", got.size());
    cr_assert_eq(got.back(), '\n');
    cr_assert_eq(t::stop(t::served, SIGTERM, 2000), 0);
    close(p[0]);
}

// rm -rf / mv / mkdir of the store while running, on both ports: 503 with the reason, nothing
// written anywhere else, and back in service without a restart.
Test(e2e_responsive, a_store_that_goes_away_is_503_and_comes_back) {
    boot_with({}, t::duet_binary());
    std::string data = g_dir + "/data";
    cr_assert_eq(t::status_of(http(req("PUT", "/files/a", "Content-Length: 1\r\n", "a"))), 201);
    t::sh("rm -rf '" + data + "'");
    std::int64_t until = t::now_ms() + 5000;
    std::string h;
    while (t::now_ms() < until && t::status_of(h = http(req("GET", "/healthz"))) == 200)
        usleep(5000);
    cr_assert_eq(t::status_of(h), 503);
    cr_assert(t::body_of(h).find("removed") != std::string::npos, "%s", h.c_str());
    cr_assert_eq(t::status_of(http(req("PUT", "/files/b", "Content-Length: 1\r\n", "b"))), 503);
    cr_assert_eq(t::status_of(http(req("GET", "/files"))), 503);
    cr_assert_eq(files_cmd("LIST"), "ERR 503 store unavailable");
    cr_assert_eq(files_cmd("PUT c 1"), "ERR 503 store unavailable");
    struct stat st;
    cr_assert_neq(stat(data.c_str(), &st), 0, "the store directory must not be re-created");
    cr_assert(t::wait_log(t::served, "store unavailable: the store directory", 2000));

    t::sh("mkdir '" + data + "'");
    until = t::now_ms() + 5000;
    while (t::now_ms() < until && t::status_of(h = http(req("GET", "/healthz"))) != 200)
        usleep(5000);
    cr_assert_eq(t::status_of(h), 200);
    cr_assert_eq(t::status_of(http(req("PUT", "/files/b", "Content-Length: 1\r\n", "b"))), 201);
    cr_assert_eq(files_cmd("LIST"), "OK 1");

    t::sh("mv '" + data + "' '" + g_dir + "/moved'");
    until = t::now_ms() + 5000;
    while (t::now_ms() < until && t::status_of(h = http(req("GET", "/healthz"))) == 200)
        usleep(5000);
    cr_assert_eq(t::status_of(h), 503);
    cr_assert_eq(t::status_of(http(req("PUT", "/files/c", "Content-Length: 1\r\n", "c"))), 503);
    cr_assert_eq(files_cmd("PUT d 1"), "ERR 503 store unavailable");
    cr_assert_eq(t::status_of(http(req("GET", "/files"))), 503);
    cr_assert_eq(t::sh("ls '" + g_dir + "/moved'"), "b\n", "nothing written into the moved store");

    t::sh("mkdir '" + data + "'");
    until = t::now_ms() + 5000;
    while (t::now_ms() < until && t::status_of(h = http(req("GET", "/healthz"))) != 200)
        usleep(5000);
    cr_assert_eq(t::status_of(h), 200);
    cr_assert_eq(t::body_of(http(req("GET", "/files"))), "[]\n");
    cr_assert_eq(files_cmd("PUT d 0"), "OK 0 " + std::string("e3b0c44298fc1c149afbf4c8996fb924"
                                                             "27ae41e4649b934ca495991b7852b855"));
}

// Out of file descriptors: a request that needs one is 503 with Retry-After, never 500.
Test(e2e_responsive, out_of_descriptors_is_503_retry_after) {
    boot_with({}, t::duet_binary());
    cr_assert_eq(t::status_of(http(req("PUT", "/files/a", "Content-Length: 1\r\n", "a"))), 201);
    int h = t::connect_port(t::served.http_port);
    int f = t::connect_port(t::served.files_port);
    cr_assert(h >= 0 && f >= 0);
    t::send_all(f, "PING\n");
    cr_assert_eq(t::read_line(f), "OK pong");
    t::send_all(h, req("GET", "/healthz"));
    cr_assert_eq(t::status_of(t::read_response(h)), 200);
    // No descriptor left: the limit is the lowest fd number the process could still take.
    std::string fds = t::sh("ls /proc/" + std::to_string(t::served.pid) + "/fd");
    std::vector<int> used;
    for (std::size_t at = 0; at < fds.size();) {
        used.push_back(std::atoi(fds.c_str() + at));
        at = fds.find('\n', at);
        if (at == std::string::npos) break;
        ++at;
    }
    rlim_t lowest = 0;
    while (std::find(used.begin(), used.end(), int(lowest)) != used.end()) ++lowest;
    rlimit lim{lowest, lowest};
    cr_assert_eq(prlimit(t::served.pid, RLIMIT_NOFILE, &lim, nullptr), 0);
    t::send_all(h, req("GET", "/files/a"));
    std::string r = t::read_response(h);
    cr_assert_eq(t::status_of(r), 503, "%s", r.c_str());
    cr_assert_eq(t::header_of(r, "Retry-After"), "1");
    t::send_all(f, "GET a\n");
    cr_assert_eq(t::read_line(f), "ERR 503 busy, retry");
    t::send_all(h, req("PUT", "/files/b", "Content-Length: 1\r\n", "b"));
    r = t::read_response(h);
    cr_assert_eq(t::status_of(r), 503, "%s", r.c_str());
    close(h);
    close(f);
}
