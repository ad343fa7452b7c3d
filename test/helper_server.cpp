#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <random>
#include <sstream>

#include "helper.hpp"

extern char** environ;

namespace t {

std::int64_t now_ms() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

Duet served;
static std::vector<std::string> booted_dirs;

std::string boot(std::vector<std::string> args) {
    std::string dir = make_tmpdir();
    cr_assert(!dir.empty(), "cannot make a temporary directory");
    booted_dirs.push_back(dir);
    bool ok = start(served, std::move(args), dir + "/data");
    cr_assert(ok, "server did not start: %s", served.err_log.c_str());
    return dir;
}

void remove_at_teardown(const std::string& dir) {
    booted_dirs.push_back(dir);
}

void teardown() {
    if (served.pid > 0) stop(served, SIGKILL);
    for (auto& d : booted_dirs)
        if (d.rfind("/tmp/duet-test-", 0) == 0 || d.rfind("/dev/shm/duet-test-", 0) == 0)
            sh("rm -rf '" + d + "'");
    booted_dirs.clear();
}

std::string duet_binary() {
    const char* b = getenv("DUET_BIN");
    return b && *b ? b : "build/duet-san";
}

std::string timing_binary() {
    if (getenv("DUET_BIN")) return duet_binary();
    return access("build/duet", X_OK) == 0 ? "build/duet" : duet_binary();
}

void pin_apart(pid_t server) {
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    sched_setaffinity(server, sizeof set, &set);
    CPU_ZERO(&set);
    CPU_SET(1, &set);
    sched_setaffinity(0, sizeof set, &set);
}

std::string make_tmpdir() {
    char tmpl[] = "/tmp/duet-test-XXXXXX";
    char* d = mkdtemp(tmpl);
    return d ? d : "";
}

std::string make_memory_tmpdir() {
    char tmpl[] = "/dev/shm/duet-test-XXXXXX";
    char* d = mkdtemp(tmpl);
    return d ? std::string(d) : make_tmpdir();
}

static bool has_arg(const std::vector<std::string>& args, const std::string& name) {
    for (auto& a : args)
        if (a == name || a.rfind(name + "=", 0) == 0) return true;
    return false;
}

// Reads what stderr has now (waiting up to timeout_ms for the first bytes).
static bool pump_stderr(Duet& d, int timeout_ms) {
    pollfd p{d.err_fd, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return false;
    char buf[4096];
    ssize_t n = read(d.err_fd, buf, sizeof buf);
    if (n <= 0) return false;
    d.err_log.append(buf, std::size_t(n));
    return true;
}

bool parse_ready(Duet& d, std::size_t from) {
    std::size_t at = d.err_log.rfind("duet: ready ");
    if (at == std::string::npos || at < from) return false;
    std::size_t end = d.err_log.find('\n', at);
    if (end == std::string::npos) return false;
    d.ready_line = d.err_log.substr(at, end - at);
    auto port_of = [&](const char* key) {
        std::size_t k = d.ready_line.find(key);
        if (k == std::string::npos) return 0;
        std::size_t sp = d.ready_line.find(' ', k);
        std::string addr = d.ready_line.substr(k + std::strlen(key), sp - k - std::strlen(key));
        return std::atoi(addr.substr(addr.rfind(':') + 1).c_str());
    };
    d.http_port = port_of("http=");
    d.files_port = port_of("files=");
    std::size_t g = d.ready_line.find("generation=");
    d.generation = g == std::string::npos ? -1 : std::atoi(d.ready_line.c_str() + g + 11);
    return d.http_port > 0 && d.files_port > 0;
}

bool wait_log(Duet& d, const std::string& needle, int timeout_ms) {
    std::int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        if (d.err_log.find(needle) != std::string::npos) return true;
        std::int64_t left = deadline - now_ms();
        if (left <= 0) return false;
        pump_stderr(d, int(left));
    }
}

bool wait_ready_after(Duet& d, std::size_t from, int timeout_ms) {
    std::int64_t deadline = now_ms() + timeout_ms;
    while (!parse_ready(d, from)) {
        if (now_ms() >= deadline) return false;
        wait_log(d, "\x01", 20);  // nothing matches: just reads stderr for up to 20 ms
    }
    return true;
}

bool reload_and_wait(Duet& d, int timeout_ms) {
    std::size_t from = d.err_log.size();
    return kill(d.pid, SIGHUP) == 0 && wait_ready_after(d, from, timeout_ms);
}

bool start(Duet& d, std::vector<std::string> args, std::string data_dir,
           std::vector<std::string> env, std::string binary) {
    if (binary.empty()) binary = duet_binary();
    if (!has_arg(args, "--http")) args.insert(args.begin(), {"--http", "127.0.0.1:0"});
    if (!has_arg(args, "--files")) args.insert(args.begin(), {"--files", "127.0.0.1:0"});
    if (!has_arg(args, "--data")) {
        if (data_dir.empty()) data_dir = make_tmpdir() + "/data";
        args.insert(args.begin(), {"--data", data_dir});
    }
    d.data_dir = data_dir;
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0) return false;
    pid_t pid = fork();
    if (pid == 0) {
        // If the test process dies (a crash, not a failed assertion), its server goes with it.
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(pipefd[1], 2);
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        std::vector<std::string> all = {binary};
        all.insert(all.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (auto& a : all) argv.push_back(a.data());
        argv.push_back(nullptr);
        for (auto& e : env) putenv(e.data());
        // Criterion may run us with signals blocked or ignored; the server starts clean.
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        setenv("ASAN_OPTIONS", "detect_leaks=0", 0);
        execv(binary.c_str(), argv.data());
        _exit(127);
    }
    close(pipefd[1]);
    d.pid = pid;
    d.err_fd = pipefd[0];
    if (!wait_log(d, "duet: ready ", 10000)) return false;
    wait_log(d, "\n", 100);
    std::int64_t deadline = now_ms() + 2000;
    while (!parse_ready(d) && now_ms() < deadline) pump_stderr(d, 50);
    return d.http_port > 0;
}

int wait_exit(Duet& d, int timeout_ms) {
    std::int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        int status = 0;
        pid_t r = waitpid(d.pid, &status, WNOHANG);
        if (r == d.pid) {
            while (pump_stderr(d, 0)) {
            }
            d.pid = -1;
            if (WIFEXITED(status)) return WEXITSTATUS(status);
            if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
            return -1;
        }
        if (now_ms() >= deadline) return -1;
        // Keep the stderr pipe drained while waiting, so the server never blocks on it.
        if (!pump_stderr(d, 5)) usleep(2000);
    }
}

int stop(Duet& d, int sig, int timeout_ms) {
    if (d.pid <= 0) return -1;
    kill(d.pid, sig);
    int rc = wait_exit(d, timeout_ms);
    if (rc == -1 && d.pid > 0) {
        kill(d.pid, SIGKILL);
        waitpid(d.pid, nullptr, 0);
        d.pid = -1;
    }
    return rc;
}

// A blocking loopback connection to `port`; `rcvbuf` > 0 also makes it a slow reader (small
// segments and that receive window, set before connecting, when the window is negotiated).
static int connect_loopback(int port, int rcvbuf, int timeout_s) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (rcvbuf > 0) {
        int mss = 1000;
        setsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof mss);
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    }
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(std::uint16_t(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        close(fd);
        return -1;
    }
    timeval tv{timeout_s, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

int connect_port(int port) {
    return connect_loopback(port, 0, 10);
}

int connect_slow_reader(int port, int rcvbuf) {
    return connect_loopback(port, rcvbuf, 20);
}

bool send_all(int fd, const std::string& data) {
    std::size_t off = 0;
    while (off < data.size()) {
        ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) continue;
            return false;
        }
        off += std::size_t(n);
    }
    return true;
}

static ssize_t read_some(int fd, char* buf, std::size_t len, std::int64_t deadline) {
    for (;;) {
        std::int64_t left = deadline - now_ms();
        if (left <= 0) return -2;
        pollfd p{fd, POLLIN, 0};
        int r = poll(&p, 1, int(left));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -2;
        ssize_t n = recv(fd, buf, len, 0);
        if (n < 0 && errno == EINTR) continue;
        return n < 0 ? -1 : n;
    }
}

std::string read_all(int fd, int timeout_ms) {
    std::string out;
    std::int64_t deadline = now_ms() + timeout_ms;
    char buf[65536];
    for (;;) {
        ssize_t n = read_some(fd, buf, sizeof buf, deadline);
        if (n <= 0) return out;
        out.append(buf, std::size_t(n));
    }
}

std::string read_n(int fd, std::size_t want, int timeout_ms) {
    std::string out;
    std::int64_t deadline = now_ms() + timeout_ms;
    char buf[65536];
    while (out.size() < want) {
        std::size_t chunk = want - out.size() < sizeof buf ? want - out.size() : sizeof buf;
        ssize_t n = read_some(fd, buf, chunk, deadline);
        if (n <= 0) break;
        out.append(buf, std::size_t(n));
    }
    return out;
}

std::string read_line(int fd, int timeout_ms) {
    std::string out;
    std::int64_t deadline = now_ms() + timeout_ms;
    char c;
    for (;;) {
        ssize_t n = read_some(fd, &c, 1, deadline);
        if (n <= 0) return out;
        if (c == '\n') return out;
        out += c;
    }
}

bool peer_closed(int fd, int timeout_ms) {
    std::int64_t deadline = now_ms() + timeout_ms;
    char buf[4096];
    for (;;) {
        ssize_t n = read_some(fd, buf, sizeof buf, deadline);
        if (n == 0 || n == -1) return true;
        if (n == -2) return false;
    }
}

static std::string lower(std::string s) {
    for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::string read_response(int fd, bool head_only, int timeout_ms) {
    std::string out;
    std::int64_t deadline = now_ms() + timeout_ms;
    char c;
    while (out.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = read_some(fd, &c, 1, deadline);
        if (n <= 0) return out;
        out += c;
    }
    int status = status_of(out);
    if (head_only || status < 200 || status == 204 || status == 304) return out;
    std::string cl = header_of(out, "content-length");
    if (cl.empty()) return out + read_all(fd, timeout_ms);
    std::size_t len = std::strtoull(cl.c_str(), nullptr, 10);
    return out + read_n(fd, len, int(deadline - now_ms()));
}

int status_of(const std::string& r) {
    if (r.size() < 12 || r.compare(0, 5, "HTTP/") != 0) return -1;
    return std::atoi(r.c_str() + 9);
}

std::string header_of(const std::string& r, const std::string& name) {
    std::string head = r.substr(0, r.find("\r\n\r\n"));
    std::string want = lower(name) + ":";
    std::istringstream in(head);
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (lower(line.substr(0, want.size())) == want) {
            std::string v = line.substr(want.size());
            while (!v.empty() && v.front() == ' ') v.erase(0, 1);
            return v;
        }
    }
    return "";
}

std::string body_of(const std::string& r) {
    std::size_t at = r.find("\r\n\r\n");
    return at == std::string::npos ? "" : r.substr(at + 4);
}

std::string http(int port, const std::string& raw, bool head_only) {
    int fd = connect_port(port);
    if (fd < 0) return "";
    send_all(fd, raw);
    std::string r = read_response(fd, head_only);
    close(fd);
    return r;
}

std::string sh(const std::string& cmd, int* status) {
    std::string out;
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return out;
    char buf[65536];
    std::size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    int st = pclose(p);
    if (status) *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

bool write_file(const std::string& path, const std::string& data) {
    std::ofstream out(path, std::ios::binary);
    out << data;
    return bool(out);
}

std::string random_bytes(std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::string s(n, '\0');
    for (auto& c : s) c = char(rng() & 0xff);
    return s;
}

std::string request(const std::string& method, const std::string& path, const std::string& fields,
                    const std::string& body) {
    return method + " " + path + " HTTP/1.1\r\nHost: x\r\n" + fields + "\r\n" + body;
}

int files_conn(const Duet& d) {
    int fd = connect_port(d.files_port);
    cr_assert(fd >= 0, "cannot connect to the file port %d", d.files_port);
    return fd;
}

std::string files_cmd(int fd, const std::string& line) {
    send_all(fd, line + "\n");
    return read_line(fd);
}

}  // namespace t
