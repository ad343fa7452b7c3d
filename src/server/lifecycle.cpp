#include "duet/server/lifecycle.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "duet/core/trace.hpp"

extern char** environ;

namespace duet {
namespace {

constexpr std::int64_t kCheckTimeoutMs = 10000;

sigset_t lifecycle_signals() {
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGCHLD}) sigaddset(&set, s);
    return set;
}

std::string dirname_of(const std::string& path) {
    auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

std::string basename_of(const std::string& path) {
    auto slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

void block_lifecycle_signals() {
    sigset_t set = lifecycle_signals();
    sigprocmask(SIG_BLOCK, &set, nullptr);
    signal(SIGPIPE, SIG_IGN);  // a peer that went away is an error value, never a kill
    signal(SIGXFSZ, SIG_IGN);  // a file-size limit is EFBIG on the write (507), never a kill
}

void notify_service_manager(const std::string& message) {
    const char* path = getenv("NOTIFY_SOCKET");
    if (!path || !*path) return;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::size_t len = std::strlen(path);
    if (len >= sizeof addr.sun_path || (path[0] != '/' && path[0] != '@')) return;
    std::memcpy(addr.sun_path, path, len);
    if (path[0] == '@') addr.sun_path[0] = 0;  // abstract namespace
    Fd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) return;
    socklen_t alen = socklen_t(offsetof(sockaddr_un, sun_path) + len);
    sendto(fd.get(), message.data(), message.size(), MSG_NOSIGNAL,
           reinterpret_cast<sockaddr*>(&addr), alen);
}

bool Lifecycle::init(LifecycleEvents& events, Loop& loop, const std::string& exe,
                     const std::vector<std::string>& watch, bool reload, int inherited,
                     std::string& error) {
    events_ = &events;
    sigset_t set = lifecycle_signals();
    signal_fd_.reset(signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
    if (!signal_fd_) {
        error = std::string("signalfd: ") + std::strerror(errno);
        return false;
    }
    on_signal_.life = this;
    loop.add(signal_fd_.get(), EPOLLIN, &on_signal_);
    if (!reload) {
        if (inherited >= 0) ::close(inherited);
        return true;
    }
    if (inherited >= 0) {
        inotify_fd_.reset(inherited);
        // What is queued there was seen by the previous image (or came from the change that made
        // this reload): this image is already the new binary, so it must not reload for it again.
        alignas(inotify_event) char buf[4096];
        while (::read(inherited, buf, sizeof buf) > 0) {
        }
    } else {
        inotify_fd_.reset(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    }
    if (!inotify_fd_) {
        error = std::string("inotify: ") + std::strerror(errno);
        return false;
    }
    on_watch_.life = this;
    loop.add(inotify_fd_.get(), EPOLLIN, &on_watch_);
    add_watch(exe, error);
    for (auto& p : watch) add_watch(p, error);
    return error.empty();
}

void Lifecycle::add_watch(const std::string& path, std::string& error) {
    struct stat st;
    bool is_dir = ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
    // A file is watched through its directory, so replacing it (unlink + create, or rename over)
    // is seen; a watch on the file itself would stay on the old inode.
    std::string dir = is_dir ? path : dirname_of(path);
    std::uint32_t mask =
        IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_ATTRIB;
    int wd = inotify_add_watch(inotify_fd_.get(), dir.c_str(), mask | IN_ONLYDIR);
    if (wd < 0) {
        error = "--watch " + path + ": " + std::strerror(errno);
        return;
    }
    watches_.push_back({wd, is_dir ? std::string() : basename_of(path)});
}

void Lifecycle::on_watch_readable() {
    alignas(inotify_event) char buf[8192];
    for (;;) {
        ssize_t n = ::read(inotify_fd_.get(), buf, sizeof buf);
        if (n <= 0) return;
        for (char* p = buf; p < buf + n;) {
            auto* ev = reinterpret_cast<inotify_event*>(p);
            p += sizeof(inotify_event) + ev->len;
            std::string_view name = ev->len ? std::string_view(ev->name) : std::string_view();
            for (auto& w : watches_) {
                if (w.wd != ev->wd) continue;
                // Only a finished write or an arrival counts for a watched file: a linker's
                // unlink + create + writes end in IN_CLOSE_WRITE, an installer's rename in
                // IN_MOVED_TO. For a watched directory, any change does.
                bool relevant = w.name.empty()
                                    ? true
                                    : (name == w.name &&
                                       (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO | IN_ATTRIB)));
                if (relevant) events_->on_watch_event();
            }
        }
    }
}

void Lifecycle::on_signal_readable() {
    signalfd_siginfo info;
    while (::read(signal_fd_.get(), &info, sizeof info) == sizeof info) {
        if (info.ssi_signo == SIGCHLD) continue;  // the check child: reaped in poll_check
        events_->on_signal(int(info.ssi_signo));
    }
}

bool Lifecycle::start_check(const std::string& exe, const std::vector<std::string>& argv,
                            std::int64_t now_ms) {
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) != 0) return false;
    Fd rd(pipefd[0]), wr(pipefd[1]);
    std::vector<std::string> args = argv;
    args.push_back("--check");
    std::vector<char*> cargv;
    for (auto& a : args) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, wr.get(), 1);
    posix_spawn_file_actions_adddup2(&fa, wr.get(), 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    // The child starts with default signal handling and nothing blocked.
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGXFSZ);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid = -1;
    // Asks the new image to also report which hand-over formats it reads (handover.hpp); a plain
    // --check prints only "ok".
    std::vector<char*> cenv;
    for (char** e = environ; *e; ++e)
        if (!std::string_view(*e).starts_with("DUET_REPORT_HANDOVER=")) cenv.push_back(*e);
    char report[] = "DUET_REPORT_HANDOVER=1";
    cenv.push_back(report);
    cenv.push_back(nullptr);
    int rc = posix_spawn(&pid, exe.c_str(), &fa, &attr, cargv.data(), cenv.data());
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
        check_text_ = std::string("cannot run ") + exe + ": " + std::strerror(rc);
        check_pid_ = -1;
        return false;
    }
    check_pid_ = pid;
    check_output_ = std::move(rd);
    check_text_.clear();
    check_deadline_ms_ = now_ms + kCheckTimeoutMs;
    return true;
}

void Lifecycle::poll_check(std::int64_t now_ms) {
    if (check_pid_ <= 0) return;
    char buf[512];
    ssize_t n;
    while ((n = ::read(check_output_.get(), buf, sizeof buf)) > 0)
        if (check_text_.size() < 4096) check_text_.append(buf, std::size_t(n));
    int status = 0;
    pid_t r = waitpid(check_pid_, &status, WNOHANG);
    if (r == check_pid_) {
        while ((n = ::read(check_output_.get(), buf, sizeof buf)) > 0)
            if (check_text_.size() < 4096) check_text_.append(buf, std::size_t(n));
        finish_check(status);
        return;
    }
    if (now_ms >= check_deadline_ms_) {
        kill(check_pid_, SIGKILL);
        waitpid(check_pid_, &status, 0);
        check_text_ = "the check did not finish within 10 s";
        finish_check(-1);
    }
}

void Lifecycle::finish_check(int status) {
    check_pid_ = -1;
    check_output_.reset();
    bool ok = status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    while (!check_text_.empty() && (check_text_.back() == '\n' || check_text_.back() == '\r'))
        check_text_.pop_back();
    if (!ok && check_text_.empty()) {
        check_text_ = WIFSIGNALED(status)
                          ? std::string("killed by signal ") + std::to_string(WTERMSIG(status))
                          : "exit status " + std::to_string(WEXITSTATUS(status));
    }
    events_->on_check_done(ok, check_text_);
}

InotifyFds take_inherited_inotify() {
    InotifyFds out;
    const char* v = getenv("DUET_INOTIFY_FDS");
    if (!v) return out;
    auto adopt = [](long n) {
        if (n < 0 || n > INT_MAX) return -1;
        char link[64], path[32];
        std::snprintf(path, sizeof path, "/proc/self/fd/%ld", n);
        ssize_t len = ::readlink(path, link, sizeof link - 1);
        if (len < 0) return -1;
        link[len] = 0;
        if (std::strcmp(link, "anon_inode:inotify") != 0) return -1;  // not ours: leave it alone
        fcntl(int(n), F_SETFD, FD_CLOEXEC);
        return int(n);
    };
    char* end = nullptr;
    long store = std::strtol(v, &end, 10);
    if (end != v && *end == ',') {
        const char* r = end + 1;
        long reload = std::strtol(r, &end, 10);
        if (end != r && *end == 0) {
            out.store = adopt(store);
            out.reload = adopt(reload);
        }
    }
    unsetenv("DUET_INOTIFY_FDS");
    return out;
}

std::size_t close_unclaimed_fds(const std::vector<int>& keep) {
    DIR* dir = ::opendir("/proc/self/fd");
    if (!dir) return 0;
    std::vector<int> open;
    while (dirent* e = ::readdir(dir)) {
        char* end = nullptr;
        long n = std::strtol(e->d_name, &end, 10);
        if (end != e->d_name && *end == 0 && n > 2 && n != ::dirfd(dir)) open.push_back(int(n));
    }
    ::closedir(dir);
    std::size_t sockets = 0;
    for (int fd : open) {
        if (std::find(keep.begin(), keep.end(), fd) != keep.end()) continue;
        struct stat st;
        if (::fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode)) ++sockets;
        ::close(fd);
    }
    return sockets;
}

void reexec(const std::string& exe, const std::vector<std::string>& argv, int http_fd, int files_fd,
            const std::vector<HandedConn>& conns, int handover_fd, InotifyFds inotify,
            std::uint64_t generation, std::uint64_t reloads, double started_at) {
    // Move the listeners to 3 and 4. First lift everything we pass above the low numbers, so that
    // the dup2 calls cannot overwrite one of them.
    int h = fcntl(http_fd, F_DUPFD, 64), f = fcntl(files_fd, F_DUPFD, 64);
    std::string conn_list;
    for (const HandedConn& c : conns) {
        int moved = c.fd < 5 ? fcntl(c.fd, F_DUPFD, 64) : c.fd;
        if (moved < 0) continue;
        fcntl(moved, F_SETFD, 0);
        if (!conn_list.empty()) conn_list += ',';
        conn_list += c.kind;
        conn_list += std::to_string(moved);
    }
    for (int* fd : {&inotify.store, &inotify.reload}) {
        if (*fd >= 0 && *fd < 5) *fd = fcntl(*fd, F_DUPFD, 64);
        if (*fd >= 0) fcntl(*fd, F_SETFD, 0);
    }
    if (h < 0 || f < 0 || dup2(h, 3) < 0 || dup2(f, 4) < 0) return;
    close(h);
    close(f);
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) {
        std::string_view v(*e);
        bool ours = v.starts_with("LISTEN_") || v.starts_with("DUET_GENERATION=") ||
                    v.starts_with("DUET_RELOADS=") || v.starts_with("DUET_STARTED=") ||
                    v.starts_with("DUET_CONN_FDS=") || v.starts_with("DUET_HANDOVER_FD=") ||
                    v.starts_with("DUET_INOTIFY_FDS=") ||
                    // The test hook corrupts one hand-over, not every one after it.
                    v.starts_with("DUET_TEST_CORRUPT_HANDOVER=");
        if (!ours) env.emplace_back(v);
    }
    env.push_back("LISTEN_FDS=2");
    env.push_back("LISTEN_PID=" + std::to_string(getpid()));
    env.push_back("LISTEN_FDNAMES=http:files");
    env.push_back("DUET_GENERATION=" + std::to_string(generation));
    env.push_back("DUET_RELOADS=" + std::to_string(reloads));
    char started[48];
    std::snprintf(started, sizeof started, "DUET_STARTED=%.6f", started_at);
    env.push_back(started);
    if (!conn_list.empty()) env.push_back("DUET_CONN_FDS=" + conn_list);
    if (handover_fd >= 0) env.push_back("DUET_HANDOVER_FD=" + std::to_string(handover_fd));
    env.push_back("DUET_INOTIFY_FDS=" + std::to_string(inotify.store) + "," +
                  std::to_string(inotify.reload));
    std::vector<char*> cenv, cargv;
    for (auto& e : env) cenv.push_back(e.data());
    cenv.push_back(nullptr);
    std::vector<std::string> args = argv;
    for (auto& a : args) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    trace_reload("execve");
    execve(exe.c_str(), cargv.data(), cenv.data());
}

}  // namespace duet
