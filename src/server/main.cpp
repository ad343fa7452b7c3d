// duet: argv and environment in, exit code out. Everything else lives in Server.
#include <limits.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "duet/core/config.hpp"
#include "duet/core/handover.hpp"
#include "duet/core/trace.hpp"
#include "duet/net/listeners.hpp"
#include "duet/server/lifecycle.hpp"
#include "duet/server/server.hpp"
#include "duet/store/store.hpp"

namespace {

// The executable as an absolute path, found the way the shell found it. It stays a path (not
// /proc/self/exe, which keeps naming the old inode after a rename-over), so a reload runs
// whatever file is at that path now.
std::string resolve_executable(const char* argv0) {
    std::string name = argv0 ? argv0 : "";
    if (name.find('/') == std::string::npos) {
        const char* path = getenv("PATH");
        std::string p = path ? path : "";
        for (std::size_t at = 0; at <= p.size();) {
            std::size_t colon = p.find(':', at);
            if (colon == std::string::npos) colon = p.size();
            std::string candidate = p.substr(at, colon - at) + "/" + name;
            if (!name.empty() && access(candidate.c_str(), X_OK) == 0) {
                name = candidate;
                break;
            }
            at = colon + 1;
        }
    }
    if (!name.empty() && name[0] != '/') {
        char cwd[PATH_MAX];
        if (getcwd(cwd, sizeof cwd)) name = std::string(cwd) + "/" + name;
    }
    if (name.empty() || access(name.c_str(), X_OK) != 0) {
        char buf[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
        if (n > 0) name.assign(buf, std::size_t(n));
    }
    return name;
}

double env_number(const char* name, double fallback) {
    const char* v = getenv(name);
    double out = v ? std::strtod(v, nullptr) : fallback;
    unsetenv(name);
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    using namespace duet;
    // Signals are blocked first, so that one arriving during start-up waits for the signalfd.
    block_lifecycle_signals();
    if (getenv("DUET_GENERATION")) trace_reload("new image: main");
    Config cfg;
    std::string error;
    switch (parse_config(
        argc, argv, [](const char* n) { return getenv(n); }, cfg, error)) {
        case ConfigResult::Help:
            std::fputs(usage_text(), stdout);
            return 0;
        case ConfigResult::Version:
            std::printf("duet %s\n", kVersion);
            return 0;
        case ConfigResult::Error:
            std::fprintf(stderr, "duet: %s\n", error.c_str());
            return 2;
        case ConfigResult::Run:
            break;
    }
    if (cfg.check) {
        if (!Store::check(cfg.data, error)) {
            std::fprintf(stderr, "duet: --data %s: %s\n", cfg.data.c_str(), error.c_str());
            return 2;
        }
        std::puts("ok");
        // A reload's check also asks which hand-over formats this image reads.
        if (getenv("DUET_REPORT_HANDOVER")) std::puts(handover_check_line().c_str());
        return 0;
    }
    // The hand-over a reload left for this image (every connection as a record, handover.hpp) is
    // read before this image opens any fd of its own: its fd table can then only name passed fds.
    HandoverIn handover;
    // Only a reload's execve sets DUET_GENERATION (main unsets it once read).
    bool started_by_reload = getenv("DUET_GENERATION") != nullptr;
    if (const char* v = getenv("DUET_HANDOVER_FD")) {
        char* end = nullptr;
        long n = std::strtol(v, &end, 10);
        handover.present = true;
        if (end == v || *end != 0 || n < 0 || n >= INT_MAX)
            handover.error = "DUET_HANDOVER_FD is not a number";
        else if (!read_handover(int(n), handover, handover.error) && handover.error.empty())
            handover.error = "unreadable";
        handover.present = true;
        unsetenv("DUET_HANDOVER_FD");
    }
    if (started_by_reload) trace_reload("new image: hand-over read");
    InotifyFds inherited_inotify = take_inherited_inotify();
    // Listening sockets come first, so that freshly bound ones land on fds 3 and 4.
    ListenSockets sockets;
    std::vector<HandedConn> handed;
    bool adopted = false;
    if (!adopt_passed_sockets(sockets, handed, adopted, error)) {
        std::fprintf(stderr, "duet: %s\n", error.c_str());
        return 3;
    }
    if (!adopted) {
        if (!bind_listener(cfg.http, sockets.http, error) ||
            !bind_listener(cfg.files, sockets.files, error)) {
            std::fprintf(stderr, "duet: %s\n", error.c_str());
            return 3;
        }
    }
    if (started_by_reload) {
        // Whatever a reload passed that nothing above claimed (connections of a hand-over that
        // cannot be read, temporary files) is closed now, so clients see EOF at once.
        std::vector<int> keep = {sockets.http.get(), sockets.files.get(), inherited_inotify.store,
                                 inherited_inotify.reload};
        for (const HandedConn& c : handed) keep.push_back(c.fd);
        for (std::size_t i = 0; i < handover.fds.size(); ++i) keep.push_back(handover.fds.at(i));
        handover.unclaimed_sockets = close_unclaimed_fds(keep);
    }
    std::vector<std::string> args(argv, argv + argc);
    Server server(cfg, args, resolve_executable(argv[0]));
    timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    server.generation = std::uint64_t(env_number("DUET_GENERATION", 0));
    server.reloads = std::uint64_t(env_number("DUET_RELOADS", 0));
    server.inherited_inotify = inherited_inotify;
    server.started_at = env_number("DUET_STARTED", double(now.tv_sec) + now.tv_nsec / 1e9);
    if (int rc = server.start(std::move(sockets), std::move(handed), std::move(handover)); rc != 0)
        return rc;
    return server.run();
}
