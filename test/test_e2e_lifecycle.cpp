// Black-box lifecycle tests (README "Stop and reload"): graceful and forced stops, drains with work
// in flight, reloads by signal and by replacing the executable, socket passing (our own and
// systemd's), service-manager notifications, and a second copy on a taken port. Every process
// started here is tracked by PID and killed in the suite's .fini if a test aborts.
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "helper.hpp"

namespace {

namespace fs = std::filesystem;

constexpr std::size_t kBig = 20u << 20;  // the slow download
const std::string kGetRoot = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";

std::vector<pid_t> g_pids;
std::vector<std::string> g_dirs;
std::vector<int> g_fds;

// Kills what a test left running (it may have aborted half-way) and removes its directories.
void cleanup() {
    for (pid_t p : g_pids) {
        if (waitpid(p, nullptr, WNOHANG) == 0) {  // still ours and still running
            kill(p, SIGKILL);
            waitpid(p, nullptr, 0);
        }
    }
    for (int fd : g_fds) close(fd);
    for (auto& d : g_dirs) {
        std::error_code ec;
        fs::remove_all(d, ec);
    }
    g_pids.clear();
    g_fds.clear();
    g_dirs.clear();
}

std::string tmpdir() {
    std::string d = t::make_tmpdir();
    cr_assert(!d.empty(), "mkdtemp failed");
    g_dirs.push_back(d);
    return d;
}

void track(t::Duet& d) {
    if (d.pid > 0) g_pids.push_back(d.pid);
    if (d.err_fd >= 0) g_fds.push_back(d.err_fd);
    if (!d.data_dir.empty()) g_dirs.push_back(fs::path(d.data_dir).parent_path().string());
}

void launch(t::Duet& d, std::vector<std::string> args = {}, std::string data = "",
            std::vector<std::string> env = {}, std::string binary = "") {
    bool ok = t::start(d, std::move(args), std::move(data), std::move(env), std::move(binary));
    track(d);
    cr_assert(ok, "server did not start; stderr:\n%s", d.err_log.c_str());
}

int tracked_fd(int fd) {
    if (fd >= 0) g_fds.push_back(fd);
    return fd;
}

int connect_port(int port) {
    return tracked_fd(t::connect_port(port));
}

// Starts exactly `argv` (no options added) with stderr captured as t::start does. An env entry
// "LISTEN_PID=self" becomes the child's own PID; `fd3`, if given, becomes the child's fd 3.
void spawn(t::Duet& d, const std::vector<std::string>& argv, std::vector<std::string> env = {},
           int fd3 = -1) {
    int pipefd[2];
    cr_assert(pipe2(pipefd, O_CLOEXEC) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], 2);
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        if (fd3 >= 0) {
            int high = fcntl(fd3, F_DUPFD_CLOEXEC, 100);
            dup2(high, 3);  // the copy on 3 loses FD_CLOEXEC
        }
        for (auto& e : env) {
            if (e == "LISTEN_PID=self") e = "LISTEN_PID=" + std::to_string(getpid());
            putenv(e.data());
        }
        setenv("ASAN_OPTIONS", "detect_leaks=0", 0);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        std::vector<char*> cargv;
        for (auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
        cargv.push_back(nullptr);
        execv(cargv[0], cargv.data());
        _exit(127);
    }
    close(pipefd[1]);
    d.pid = pid;
    d.err_fd = pipefd[0];
    track(d);
}

// Waits for a ready line that starts after offset `from` in the stderr log.
// True while the process has not exited (it is not reaped, so t::wait_exit still works).
bool still_running(t::Duet& d) {
    siginfo_t info{};
    return d.pid > 0 && waitid(P_PID, id_t(d.pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
           info.si_pid == 0;
}

std::string abs_binary() {
    char buf[PATH_MAX];
    std::string b = t::duet_binary();
    return realpath(b.c_str(), buf) ? buf : b;
}

// A data directory holding a 20 MiB file, big.bin. Returns the data directory.
std::string data_with_big_file(std::string& content) {
    std::string data = tmpdir() + "/data";
    cr_assert(mkdir(data.c_str(), 0755) == 0);
    content = t::random_bytes(kBig, 7);
    cr_assert(t::write_file(data + "/big.bin", content));
    return data;
}

// Reads `n` bytes in 64 KiB steps with a short pause between steps: a slow client.
std::string read_slowly(int fd, std::size_t n) {
    std::string out;
    while (out.size() < n) {
        std::size_t step = std::min<std::size_t>(64 << 10, n - out.size());
        std::string got = t::read_n(fd, step, 10000);
        out += got;
        if (got.size() < step) break;
        usleep(1000);
    }
    return out;
}

std::string get_root(int port) {
    return t::http(port, kGetRoot);
}

int generation_served(int port) {
    std::string body = t::body_of(get_root(port));
    std::size_t at = body.find("\"generation\":");
    return at == std::string::npos ? -1 : std::atoi(body.c_str() + at + 13);
}

// Sends SIGTERM and waits for the stop to begin (the listeners are closed by then).
void term_and_wait_stopping(t::Duet& d) {
    cr_assert_eq(kill(d.pid, SIGTERM), 0);
    cr_assert(t::wait_log(d, "duet: stopping", 5000), "no stop log:\n%s", d.err_log.c_str());
}

// Opens an HTTP download of big.bin and reads its head and the first MiB: the transfer is then
// well under way and far from done (20 MiB cannot fit in the socket buffers).
int begin_http_download(t::Duet& d, const std::string& extra_requests = "") {
    int fd = connect_port(d.http_port);
    cr_assert(fd >= 0);
    cr_assert(t::send_all(fd, "GET /files/big.bin HTTP/1.1\r\nHost: t\r\n\r\n" + extra_requests));
    std::string head = t::read_response(fd, true);
    cr_assert_eq(t::status_of(head), 200, "download head: %s", head.c_str());
    cr_assert_eq(t::header_of(head, "content-length"), std::to_string(kBig));
    return fd;
}

std::int64_t stop_latency_ms(t::Duet& d, int sig, int& status) {
    std::int64_t t0 = t::now_ms();
    kill(d.pid, sig);
    status = t::wait_exit(d, 10000);
    return t::now_ms() - t0;
}

}  // namespace

TestSuite(lifecycle, .fini = cleanup, .timeout = 40);

// --- graceful stop ----------------------------------------------------------------------------

Test(lifecycle, sigint_on_idle_server_exits_0_in_milliseconds) {
    t::Duet d;
    launch(d);
    int status = -1;
    std::int64_t ms = stop_latency_ms(d, SIGINT, status);
    cr_log_info("SIGINT idle stop: %lld ms", static_cast<long long>(ms));
    std::fprintf(stderr, "lifecycle: SIGINT idle stop took %lld ms\n", static_cast<long long>(ms));
    cr_assert_eq(status, 0, "exit status %d; stderr:\n%s", status, d.err_log.c_str());
    cr_assert_lt(ms, 1000, "idle stop took %lld ms", static_cast<long long>(ms));
    cr_assert(d.err_log.find("duet: stopping: no connection busy") != std::string::npos, "%s",
              d.err_log.c_str());
}

Test(lifecycle, sigterm_closes_50_idle_keepalive_connections_and_exits_0) {
    t::Duet d;
    launch(d);
    std::vector<int> fds;
    for (int i = 0; i < 50; ++i) {
        int fd = connect_port(d.http_port);
        cr_assert(fd >= 0);
        cr_assert(t::send_all(fd, kGetRoot));
        std::string r = t::read_response(fd);
        cr_assert_eq(t::status_of(r), 200);
        cr_assert_neq(t::header_of(r, "connection"), "close");
        fds.push_back(fd);
    }
    int status = -1;
    std::int64_t ms = stop_latency_ms(d, SIGTERM, status);
    std::fprintf(stderr, "lifecycle: SIGTERM stop with 50 idle conns took %lld ms\n",
                 static_cast<long long>(ms));
    cr_assert_eq(status, 0, "exit status %d; stderr:\n%s", status, d.err_log.c_str());
    cr_assert_lt(ms, 2000, "stop with idle connections took %lld ms", static_cast<long long>(ms));
    for (int fd : fds) cr_assert(t::peer_closed(fd, 2000), "an idle connection stayed open");
}

// With a download of `content` started on `fd`: SIGTERM mid-way, then the server must stay up until
// every byte arrived intact, close the connection, and exit 0.
static void finish_download_across_sigterm(t::Duet& d, int fd, const std::string& content) {
    std::string got = t::read_n(fd, 1 << 20);
    term_and_wait_stopping(d);
    cr_assert(still_running(d), "exited with a download in flight:\n%s", d.err_log.c_str());
    got += read_slowly(fd, kBig - got.size());
    cr_assert_eq(got.size(), kBig, "download cut at %zu bytes", got.size());
    cr_assert(got == content, "downloaded bytes differ from the file");
    cr_assert(t::peer_closed(fd, 3000), "the connection stays open after its transfer");
    cr_assert_eq(t::wait_exit(d, 5000), 0, "stderr:\n%s", d.err_log.c_str());
}

Test(lifecycle, slow_http_download_in_flight_at_sigterm_completes_intact) {
    std::string content;
    std::string data = data_with_big_file(content);
    t::Duet d;
    launch(d, {}, data);
    int fd = begin_http_download(d);
    finish_download_across_sigterm(d, fd, content);
}

Test(lifecycle, slow_file_port_download_in_flight_at_sigterm_completes_intact) {
    std::string content;
    std::string data = data_with_big_file(content);
    t::Duet d;
    launch(d, {}, data);
    int fd = connect_port(d.files_port);
    cr_assert(fd >= 0);
    cr_assert(t::send_all(fd, "GET big.bin\n"));
    std::string line = t::read_line(fd);
    std::string sha = t::sh("sha256sum " + data + "/big.bin | cut -c1-64");
    sha.resize(64);
    cr_assert_eq(line, "OK " + std::to_string(kBig) + " " + sha);
    finish_download_across_sigterm(d, fd, content);
}

Test(lifecycle, healthz_answers_503_on_a_busy_connection_while_draining) {
    std::string content;
    std::string data = data_with_big_file(content);
    t::Duet d;
    launch(d, {}, data);
    int fd = begin_http_download(d, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    std::string got = t::read_n(fd, 1 << 20);
    term_and_wait_stopping(d);
    got += t::read_n(fd, kBig - got.size());
    cr_assert_eq(got.size(), kBig);
    std::string r = t::read_response(fd);
    cr_assert_eq(t::status_of(r), 503, "healthz while draining: %s", r.c_str());
    cr_assert_eq(t::header_of(r, "connection"), "close", "%s", r.c_str());
    cr_assert(t::peer_closed(fd, 3000));
    cr_assert_eq(t::wait_exit(d, 5000), 0, "stderr:\n%s", d.err_log.c_str());
}

Test(lifecycle, new_connections_are_refused_after_sigterm) {
    std::string content;
    std::string data = data_with_big_file(content);
    t::Duet d;
    launch(d, {}, data);
    int fd = begin_http_download(d);  // keeps the server alive and draining
    term_and_wait_stopping(d);
    cr_assert(still_running(d));
    int h = t::connect_port(d.http_port), f = t::connect_port(d.files_port);
    if (h >= 0) close(h);
    if (f >= 0) close(f);
    cr_assert_eq(h, -1, "HTTP port still accepts connections while stopping");
    cr_assert_eq(f, -1, "file port still accepts connections while stopping");
    cr_assert(still_running(d), "the server should still be draining the download");
    std::string rest = t::read_n(fd, kBig);
    cr_assert_eq(rest.size(), kBig);
    cr_assert_eq(t::wait_exit(d, 5000), 0);
}

// --- forced stops ---------------------------------------------------------------------------

Test(lifecycle, second_sigterm_during_drain_exits_at_once_with_1) {
    std::string content;
    std::string data = data_with_big_file(content);
    t::Duet d;
    launch(d, {}, data);
    int fd = begin_http_download(d);
    term_and_wait_stopping(d);
    cr_assert(still_running(d));
    // The stop line tells the user what is being waited for and how not to wait.
    cr_assert(t::wait_log(d, "stops at once\n", 5000), "stderr:\n%s", d.err_log.c_str());
    std::string line = d.err_log.substr(d.err_log.find("duet: stopping"));
    line.resize(line.find('\n'));
    cr_assert(line.find(" 1 connection(s) busy") != std::string::npos, "%s", line.c_str());
    cr_assert(line.find("a second Ctrl+C") != std::string::npos, "%s", line.c_str());
    int status = -1;
    std::int64_t ms = stop_latency_ms(d, SIGTERM, status);
    std::fprintf(stderr, "lifecycle: second SIGTERM exit took %lld ms\n",
                 static_cast<long long>(ms));
    cr_assert_eq(status, 1, "exit status %d; stderr:\n%s", status, d.err_log.c_str());
    cr_assert_lt(ms, 1000);
    cr_assert_lt(t::read_all(fd, 3000).size(), kBig, "the download should have been cut");
}

Test(lifecycle, sigquit_exits_at_once_with_1_and_leaves_no_partial_upload) {
    std::string content;
    std::string data = data_with_big_file(content);
    t::Duet d;
    launch(d, {}, data);
    int dl = begin_http_download(d);
    int up = connect_port(d.http_port);
    cr_assert(t::send_all(up,
                          "PUT /files/up.bin HTTP/1.1\r\nHost: t\r\nContent-Length: 1048576"
                          "\r\n\r\n" +
                              std::string(512 << 10, 'u')));
    // GET / on a third connection proves the upload head has been read (one loop, in order).
    cr_assert_eq(t::status_of(get_root(d.http_port)), 200);
    int status = -1;
    std::int64_t ms = stop_latency_ms(d, SIGQUIT, status);
    std::fprintf(stderr, "lifecycle: SIGQUIT exit took %lld ms\n", static_cast<long long>(ms));
    cr_assert_eq(status, 1, "exit status %d; stderr:\n%s", status, d.err_log.c_str());
    cr_assert_lt(ms, 1000);
    cr_assert_lt(t::read_all(dl, 3000).size(), kBig, "the download should have been cut");
    for (auto& e : fs::directory_iterator(data))
        cr_assert(e.path().filename() == "big.bin" || !e.is_regular_file(), "left behind: %s",
                  e.path().c_str());
}

Test(lifecycle, stalled_upload_is_cut_at_grace_and_stores_nothing) {
    t::Duet d;
    launch(d, {"--grace", "1"});
    int fd = connect_port(d.http_port);
    cr_assert(t::send_all(fd,
                          "PUT /files/stalled.bin HTTP/1.1\r\nHost: t\r\n"
                          "Content-Length: 1048576\r\n\r\n" +
                              std::string(512 << 10, 's')));
    cr_assert_eq(t::status_of(get_root(d.http_port)), 200);  // the loop has seen the upload
    int status = -1;
    std::int64_t ms = stop_latency_ms(d, SIGTERM, status);
    std::fprintf(stderr, "lifecycle: SIGTERM with a stalled upload, --grace 1: %lld ms\n",
                 static_cast<long long>(ms));
    cr_assert_eq(status, 0, "exit status %d; stderr:\n%s", status, d.err_log.c_str());
    cr_assert(ms >= 800 && ms <= 3000, "stop took %lld ms with --grace 1",
              static_cast<long long>(ms));
    cr_assert(t::peer_closed(fd, 2000));
    for (auto& e : fs::recursive_directory_iterator(d.data_dir))
        cr_assert(!e.is_regular_file(), "left in the store: %s", e.path().c_str());
}

// --- reload ---------------------------------------------------------------------------------

namespace {

// A private copy of the binary, so that tests can replace it while it runs.
std::string copy_binary(std::string& dir) {
    dir = tmpdir() + "/bin";
    cr_assert(mkdir(dir.c_str(), 0755) == 0);
    std::string exe = dir + "/duet";
    int st = -1;
    t::sh("cp " + abs_binary() + " " + exe, &st);
    cr_assert_eq(st, 0);
    return exe;
}

// Waits for the next ready line and checks that it is the same process on the same ports.
void expect_reloaded(t::Duet& d, std::size_t from, int generation) {
    int http = d.http_port, files = d.files_port;
    cr_assert(t::wait_ready_after(d, from), "no new ready line; stderr:\n%s", d.err_log.c_str());
    cr_assert_eq(d.generation, generation, "%s", d.ready_line.c_str());
    cr_assert_eq(d.http_port, http);
    cr_assert_eq(d.files_port, files);
    std::string pid = "pid=" + std::to_string(d.pid) + " ";
    cr_assert(d.ready_line.find(pid) != std::string::npos, "%s", d.ready_line.c_str());
    cr_assert(still_running(d));
    cr_assert_eq(generation_served(d.http_port), generation);
}

}  // namespace

Test(lifecycle, cp_over_the_running_binary_reloads_in_place) {
    std::string dir;
    std::string exe = copy_binary(dir);
    t::Duet d;
    launch(d, {"--reload"}, "", {}, exe);
    cr_assert_eq(generation_served(d.http_port), 0);
    std::size_t from = d.err_log.size();
    int st = -1;
    t::sh("cp -f " + abs_binary() + " " + exe, &st);
    cr_assert_eq(st, 0);
    cr_assert(t::wait_log(d, "generation=1", 10000), "stderr:\n%s", d.err_log.c_str());
    expect_reloaded(d, from, 1);
    cr_assert_eq(t::stop(d), 0);
}

Test(lifecycle, mv_over_the_running_binary_reloads_in_place) {
    std::string dir;
    std::string exe = copy_binary(dir);
    t::Duet d;
    launch(d, {"--reload"}, "", {}, exe);
    std::size_t from = d.err_log.size();
    int st = -1;
    t::sh("cp " + abs_binary() + " " + dir + "/.duet.new && mv " + dir + "/.duet.new " + exe, &st);
    cr_assert_eq(st, 0);
    expect_reloaded(d, from, 1);
    cr_assert_eq(t::stop(d), 0);
}

Test(lifecycle, broken_new_binary_keeps_the_old_one_serving) {
    std::string dir;
    std::string exe = copy_binary(dir);
    t::Duet d;
    launch(d, {"--reload"}, "", {}, exe);
    std::string script = dir + "/.broken";
    cr_assert(t::write_file(script, "#!/bin/sh\necho broken >&2; exit 1\n"));
    cr_assert_eq(chmod(script.c_str(), 0755), 0);
    cr_assert_eq(rename(script.c_str(), exe.c_str()), 0);
    cr_assert(t::wait_log(d, "--check", 10000), "stderr:\n%s", d.err_log.c_str());
    cr_assert(t::wait_log(d, "broken", 2000), "the log does not say why:\n%s", d.err_log.c_str());
    std::size_t at = d.err_log.find("--check");
    std::string line = d.err_log.substr(d.err_log.rfind('\n', at) + 1);
    line = line.substr(0, line.find('\n'));
    cr_assert(line.find("fail") != std::string::npos, "not a failure line: %s", line.c_str());
    cr_assert(still_running(d));
    cr_assert_eq(generation_served(d.http_port), 0);
    cr_assert_eq(d.err_log.find("generation=1"), std::string::npos);
    // A good binary afterwards is taken up: the watch is still armed.
    std::size_t from = d.err_log.size();
    int st = -1;
    t::sh("cp " + abs_binary() + " " + dir + "/.good && mv " + dir + "/.good " + exe, &st);
    expect_reloaded(d, from, 1);
    cr_assert_eq(t::stop(d), 0);
}

Test(lifecycle, sighup_reloads_same_pid_same_ports_next_generation) {
    t::Duet d;
    launch(d);
    for (int g = 1; g <= 2; ++g) {
        std::size_t from = d.err_log.size();
        cr_assert_eq(kill(d.pid, SIGHUP), 0);
        expect_reloaded(d, from, g);
    }
    cr_assert_eq(t::stop(d), 0);
}

Test(lifecycle, idle_keepalive_connection_survives_a_reload) {
    t::Duet d;
    launch(d);
    int fd = connect_port(d.http_port);
    cr_assert(t::send_all(fd, kGetRoot));
    cr_assert_eq(t::status_of(t::read_response(fd)), 200);
    std::size_t from = d.err_log.size();
    cr_assert_eq(kill(d.pid, SIGHUP), 0);
    expect_reloaded(d, from, 1);
    cr_assert(t::send_all(fd, kGetRoot));
    std::string r = t::read_response(fd);
    cr_assert_eq(t::status_of(r), 200, "request on the handed-over connection: '%s'", r.c_str());
    cr_assert(t::body_of(r).find("\"generation\":1") != std::string::npos, "%s", r.c_str());
    cr_assert_eq(t::stop(d), 0);
}

Test(lifecycle, file_port_session_keeps_its_auth_across_a_reload) {
    t::Duet d;
    launch(d, {"--token", "s3cret"});
    int fd = connect_port(d.files_port);
    cr_assert(t::send_all(fd, "AUTH s3cret\n"));
    cr_assert_eq(t::read_line(fd), "OK");
    std::size_t from = d.err_log.size();
    cr_assert_eq(kill(d.pid, SIGHUP), 0);
    expect_reloaded(d, from, 1);
    // Same session, new image: still authenticated, so LIST is allowed.
    cr_assert(t::send_all(fd, "LIST\n"));
    cr_assert_eq(t::read_line(fd), "OK 0");
    cr_assert(t::send_all(fd, "PING\n"));
    cr_assert_eq(t::read_line(fd), "OK pong");
    cr_assert_eq(t::stop(d), 0);
}

Test(lifecycle, handed_over_connection_gets_no_header_timeout) {
    t::Duet d;
    launch(d, {"--header-timeout", "1"});
    int fd = connect_port(d.http_port);
    cr_assert(t::send_all(fd, kGetRoot));
    cr_assert_eq(t::status_of(t::read_response(fd)), 200);
    std::size_t from = d.err_log.size();
    cr_assert_eq(kill(d.pid, SIGHUP), 0);
    expect_reloaded(d, from, 1);
    // Idle keep-alive: only --idle-timeout (60 s) applies, as before the reload.
    cr_assert_not(t::peer_closed(fd, 1600), "the handed-over idle connection was timed out");
    cr_assert(t::send_all(fd, kGetRoot));
    cr_assert_eq(t::status_of(t::read_response(fd)), 200);
    cr_assert_eq(t::stop(d), 0);
}

Test(lifecycle, clients_see_no_error_during_five_reloads) {
    t::Duet d;
    launch(d);
    std::atomic<bool> done{false};
    std::atomic<int> ok{0}, refused{0}, failed{0};
    int port = d.http_port;
    std::thread client([&] {
        for (int i = 0; i < 5000 && !done; ++i) {
            int fd = t::connect_port(port);
            if (fd < 0) {
                ++refused;
                continue;
            }
            bool good = t::send_all(fd, kGetRoot) && t::status_of(t::read_response(fd)) == 200;
            close(fd);
            ++(good ? ok : failed);
            usleep(3000);
        }
    });
    for (int g = 1; g <= 5; ++g) {
        std::size_t from = d.err_log.size();
        kill(d.pid, SIGHUP);
        if (!t::wait_ready_after(d, from) || d.generation != g) break;
        int seen = ok;
        while (ok < seen + 3 && refused + failed == 0) usleep(2000);  // traffic between reloads
    }
    done = true;
    client.join();
    std::fprintf(stderr, "lifecycle: 5 reloads: %d ok, %d refused, %d failed\n", int(ok),
                 int(refused), int(failed));
    cr_assert_eq(d.generation, 5, "stderr:\n%s", d.err_log.c_str());
    cr_assert_eq(refused, 0);
    cr_assert_eq(failed, 0);
    cr_assert_gt(ok, 15);
    cr_assert_eq(t::stop(d), 0);
}

Test(lifecycle, watched_path_change_reloads_once_after_quiet) {
    std::string dir;
    std::string exe = copy_binary(dir);  // a private copy: rebuilds elsewhere cannot reload us
    std::string watched = fs::path(dir).parent_path().string() + "/app.conf";
    cr_assert(t::write_file(watched, "v0\n"));
    t::Duet d;
    launch(d, {"--watch", watched}, "", {}, exe);
    std::size_t from = d.err_log.size();
    // A burst of writes closer together than 150 ms is one change.
    for (int i = 1; i <= 4; ++i) {
        cr_assert(t::write_file(watched, "v" + std::to_string(i) + "\n"));
        usleep(50 * 1000);
    }
    expect_reloaded(d, from, 1);
    cr_assert_not(t::wait_log(d, "generation=2", 600), "a burst caused two reloads:\n%s",
                  d.err_log.c_str());
    cr_assert_eq(t::stop(d), 0);
}

Test(lifecycle, token_and_files_carry_over_a_reload) {
    t::Duet d;
    launch(d, {"--token", "s3cret"});
    const std::string auth = "Authorization: Bearer s3cret\r\n";
    std::string put = t::http(d.http_port, "PUT /files/a.txt HTTP/1.1\r\nHost: t\r\n" + auth +
                                               "Content-Length: 5\r\n\r\nhello");
    cr_assert_eq(t::status_of(put), 201, "%s", put.c_str());
    std::size_t from = d.err_log.size();
    cr_assert_eq(kill(d.pid, SIGHUP), 0);
    expect_reloaded(d, from, 1);
    std::string get = "GET /files/a.txt HTTP/1.1\r\nHost: t\r\n";
    cr_assert_eq(t::status_of(t::http(d.http_port, get + "\r\n")), 401);
    std::string r = t::http(d.http_port, get + auth + "\r\n");
    cr_assert_eq(t::status_of(r), 200, "%s", r.c_str());
    cr_assert_eq(t::body_of(r), "hello");
    cr_assert_eq(t::stop(d), 0);
}

Test(lifecycle, check_succeeds_while_another_copy_holds_the_ports) {
    t::Duet d;
    launch(d);
    int st = -1;
    std::string out =
        t::sh(abs_binary() + " --check --http 127.0.0.1:" + std::to_string(d.http_port) +
                  " --files 127.0.0.1:" + std::to_string(d.files_port) + " --data " + d.data_dir +
                  " 2>&1",
              &st);
    cr_assert_eq(st, 0, "--check failed: %s", out.c_str());
    cr_assert_eq(out, "ok\n");
    cr_assert_eq(t::status_of(get_root(d.http_port)), 200);
    cr_assert_eq(t::stop(d), 0);
}

// --- socket passing --------------------------------------------------------------------------

namespace {

int free_port() {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    close(fd);
    return ntohs(a.sin_port);
}

}  // namespace

Test(lifecycle, systemd_socket_activate_passes_both_ports) {
    int p1 = free_port(), p2 = free_port();
    cr_assert_neq(p1, p2);
    std::string data = tmpdir() + "/data";
    t::Duet d;
    spawn(d, {"/usr/bin/systemd-socket-activate", "-l", "127.0.0.1:" + std::to_string(p1), "-l",
              "127.0.0.1:" + std::to_string(p2), "--fdname=http:files", "-E",
              "ASAN_OPTIONS=detect_leaks=0", abs_binary(), "--data", data});
    // systemd-socket-activate starts the service on the first connection, which waits in the
    // backlog meanwhile: that client must be answered by duet.
    int first = -1;
    for (std::int64_t end = t::now_ms() + 5000; first < 0 && t::now_ms() < end;) {
        first = connect_port(p1);
        if (first < 0) t::wait_log(d, "\x01", 10);  // not listening yet
    }
    cr_assert(first >= 0, "systemd-socket-activate never listened:\n%s", d.err_log.c_str());
    cr_assert(t::send_all(first, kGetRoot));
    cr_assert(t::wait_ready_after(d, 0), "no ready line; stderr:\n%s", d.err_log.c_str());
    cr_assert_eq(d.http_port, p1, "%s", d.ready_line.c_str());
    cr_assert_eq(d.files_port, p2, "%s", d.ready_line.c_str());
    cr_assert_eq(t::status_of(t::read_response(first)), 200);
    cr_assert_eq(t::status_of(get_root(p1)), 200);
    int fd = connect_port(p2);
    cr_assert(t::send_all(fd, "PING\n"));
    cr_assert_eq(t::read_line(fd), "OK pong");
    cr_assert_eq(t::stop(d), 0, "stderr:\n%s", d.err_log.c_str());
}

Test(lifecycle, systemd_socket_activate_without_names_takes_http_first) {
    int p1 = free_port(), p2 = free_port();
    cr_assert_neq(p1, p2);
    std::string data = tmpdir() + "/data";
    t::Duet d;
    spawn(d, {"/usr/bin/systemd-socket-activate", "-l", "127.0.0.1:" + std::to_string(p1), "-l",
              "127.0.0.1:" + std::to_string(p2), "-E", "ASAN_OPTIONS=detect_leaks=0", abs_binary(),
              "--data", data});
    int first = -1;
    for (std::int64_t end = t::now_ms() + 5000; first < 0 && t::now_ms() < end;) {
        first = connect_port(p2);  // the file port this time
        if (first < 0) t::wait_log(d, "\x01", 10);
    }
    cr_assert(first >= 0, "systemd-socket-activate never listened:\n%s", d.err_log.c_str());
    cr_assert(t::send_all(first, "PING\n"));
    cr_assert(t::wait_ready_after(d, 0), "no ready line; stderr:\n%s", d.err_log.c_str());
    cr_assert_eq(d.http_port, p1, "%s", d.ready_line.c_str());
    cr_assert_eq(d.files_port, p2, "%s", d.ready_line.c_str());
    cr_assert_eq(t::read_line(first), "OK pong");
    cr_assert_eq(t::status_of(get_root(p1)), 200);
    cr_assert_eq(t::stop(d), 0, "stderr:\n%s", d.err_log.c_str());
}

Test(lifecycle, listen_fds_naming_a_non_socket_exits_3) {
    std::string dir = tmpdir();
    int file = open((dir + "/not-a-socket").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    cr_assert(file >= 0);
    t::Duet d;
    spawn(d, {abs_binary(), "--data", dir + "/data"}, {"LISTEN_FDS=1", "LISTEN_PID=self"}, file);
    close(file);
    cr_assert_eq(t::wait_exit(d, 5000), 3, "stderr:\n%s", d.err_log.c_str());
    cr_assert(d.err_log.find("fd 3") != std::string::npos &&
                  d.err_log.find("not a listening") != std::string::npos,
              "unclear message: %s", d.err_log.c_str());
    cr_assert_eq(d.err_log.find("duet: ready"), std::string::npos);
}

Test(lifecycle, listen_fds_naming_an_unlistening_socket_exits_3) {
    int sock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(sock >= 0);
    std::string dir = tmpdir();
    t::Duet d;
    spawn(d, {abs_binary(), "--data", dir + "/data"}, {"LISTEN_FDS=1", "LISTEN_PID=self"}, sock);
    close(sock);
    cr_assert_eq(t::wait_exit(d, 5000), 3, "stderr:\n%s", d.err_log.c_str());
    cr_assert(d.err_log.find("not a listening") != std::string::npos, "%s", d.err_log.c_str());
}

// --- service manager -------------------------------------------------------------------------

namespace {

// Binds a datagram socket at `name` (a path, or "@..." for the abstract namespace).
int bind_notify_socket(const std::string& name) {
    int fd = tracked_fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    cr_assert(fd >= 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    cr_assert_lt(name.size(), sizeof a.sun_path);
    std::memcpy(a.sun_path, name.data(), name.size());
    if (name[0] == '@') a.sun_path[0] = 0;
    socklen_t len = socklen_t(offsetof(sockaddr_un, sun_path) + name.size());
    cr_assert_eq(bind(fd, reinterpret_cast<sockaddr*>(&a), len), 0, "bind %s: %s", name.c_str(),
                 std::strerror(errno));
    return fd;
}

// The next datagram that contains `needle` (others are skipped), or "" after the timeout.
std::string next_notify(int fd, const std::string& needle, int timeout_ms = 10000) {
    std::int64_t deadline = t::now_ms() + timeout_ms;
    for (;;) {
        std::int64_t left = deadline - t::now_ms();
        pollfd p{fd, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, int(left)) <= 0) return "";
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) continue;
        std::string msg(buf, std::size_t(n));
        if (msg.find(needle) != std::string::npos) return msg;
    }
}

std::int64_t monotonic_usec() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

void notify_sequence(const std::string& name) {
    int sock = bind_notify_socket(name);
    t::Duet d;
    launch(d, {}, "", {"NOTIFY_SOCKET=" + name});
    cr_assert_neq(next_notify(sock, "READY=1"), "", "no READY=1");
    std::size_t from = d.err_log.size();
    std::int64_t before = monotonic_usec();
    cr_assert_eq(kill(d.pid, SIGHUP), 0);
    std::string msg = next_notify(sock, "RELOADING=1");
    cr_assert_neq(msg, "", "no RELOADING=1");
    std::size_t at = msg.find("MONOTONIC_USEC=");
    cr_assert_neq(at, std::string::npos, "RELOADING=1 without MONOTONIC_USEC: %s", msg.c_str());
    std::int64_t usec = std::atoll(msg.c_str() + at + 15);
    cr_assert(usec >= before && usec <= monotonic_usec(), "MONOTONIC_USEC=%lld out of range",
              static_cast<long long>(usec));
    cr_assert_neq(next_notify(sock, "READY=1"), "", "no READY=1 after the reload");
    cr_assert(t::wait_ready_after(d, from));
    cr_assert_eq(d.generation, 1);
    cr_assert_eq(kill(d.pid, SIGTERM), 0);
    cr_assert_neq(next_notify(sock, "STOPPING=1"), "", "no STOPPING=1");
    cr_assert_eq(t::wait_exit(d, 5000), 0);
}

// Starts duet over a data dir with big.bin and a notify socket; the RELOADING=1 datagram tells
// exactly when a reload begins.
int launch_notified(t::Duet& d, std::string& content, std::vector<std::string> env = {}) {
    std::string data = data_with_big_file(content);
    std::string name = fs::path(data).parent_path().string() + "/notify.sock";
    int sock = bind_notify_socket(name);
    env.push_back("NOTIFY_SOCKET=" + name);
    launch(d, {}, data, env);
    cr_assert_neq(next_notify(sock, "READY=1"), "");
    return sock;
}

}  // namespace

Test(lifecycle, download_in_flight_during_reload_completes_and_its_connection_is_kept) {
    std::string content;
    t::Duet d;
    int sock = launch_notified(d, content);
    int fd = begin_http_download(d, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    std::string got = t::read_n(fd, 1 << 20);
    std::size_t from = d.err_log.size();
    cr_assert_eq(kill(d.pid, SIGHUP), 0);
    cr_assert_neq(next_notify(sock, "RELOADING=1"), "", "no reload began:\n%s", d.err_log.c_str());
    // The reload does not wait for the download: the new image carries it on (issue 12).
    expect_reloaded(d, from, 1);
    got += read_slowly(fd, kBig - got.size());
    cr_assert(got == content, "download damaged by the reload (%zu bytes)", got.size());
    std::string health = t::read_response(fd);
    cr_assert_eq(t::status_of(health), 200, "pipelined healthz: %s", health.c_str());
    cr_assert_neq(t::header_of(health, "connection"), "close");
    cr_assert(t::send_all(fd, kGetRoot));
    std::string r = t::read_response(fd);
    cr_assert_eq(t::status_of(r), 200, "the connection was not kept: '%s'", r.c_str());
    cr_assert(t::body_of(r).find("\"generation\":1") != std::string::npos, "%s", r.c_str());
    cr_assert_eq(t::stop(d), 0);
}

Test(lifecycle, sigterm_during_a_reload_drain_stops_gracefully_instead) {
    std::string content;
    t::Duet d;
    // Only a reload into an image that cannot read our hand-over format drains (test hook).
    int sock = launch_notified(d, content, {"DUET_TEST_HANDOVER_VERSIONS=7"});
    int fd = begin_http_download(d);
    std::string got = t::read_n(fd, 1 << 20);
    cr_assert_eq(kill(d.pid, SIGHUP), 0);
    cr_assert_neq(next_notify(sock, "RELOADING=1"), "");
    cr_assert_eq(kill(d.pid, SIGTERM), 0);
    cr_assert_neq(next_notify(sock, "STOPPING=1"), "", "no STOPPING=1:\n%s", d.err_log.c_str());
    got += read_slowly(fd, kBig - got.size());
    cr_assert(got == content, "download damaged (%zu bytes)", got.size());
    cr_assert(t::peer_closed(fd, 3000));
    cr_assert_eq(t::wait_exit(d, 5000), 0, "stderr:\n%s", d.err_log.c_str());
    cr_assert_eq(d.err_log.find("generation=1"), std::string::npos, "it reloaded anyway");
}

Test(lifecycle, notify_socket_path_gets_ready_reloading_stopping) {
    notify_sequence(tmpdir() + "/notify.sock");
}

Test(lifecycle, notify_socket_abstract_gets_ready_reloading_stopping) {
    notify_sequence("@duet-test-notify-" + std::to_string(getpid()) + "-" +
                    std::to_string(t::now_ms()));
}

// --- one port, one process --------------------------------------------------------------------

Test(lifecycle, second_copy_on_a_taken_port_exits_3_naming_the_holder) {
    t::Duet first;
    launch(first);
    for (int which = 0; which < 2; ++which) {
        int port = which == 0 ? first.http_port : first.files_port;
        std::string taken = "127.0.0.1:" + std::to_string(port);
        std::string dir = tmpdir();
        t::Duet second;
        spawn(second,
              {abs_binary(), "--data", dir + "/data", "--http", which == 0 ? taken : "127.0.0.1:0",
               "--files", which == 1 ? taken : "127.0.0.1:0"});
        cr_assert_eq(t::wait_exit(second, 5000), 3, "stderr:\n%s", second.err_log.c_str());
        std::string want = "cannot listen on " + taken + ": address already in use (pid " +
                           std::to_string(first.pid);
        cr_assert(second.err_log.find(want) != std::string::npos, "want '%s' in: %s", want.c_str(),
                  second.err_log.c_str());
    }
    cr_assert_eq(t::status_of(get_root(first.http_port)), 200);
    int fd = connect_port(first.files_port);
    cr_assert(t::send_all(fd, "PING\n"));
    cr_assert_eq(t::read_line(fd), "OK pong");
    cr_assert_eq(t::stop(first), 0);
}
