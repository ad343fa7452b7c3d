#include "duet/net/listeners.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "duet/core/ipv4.hpp"

namespace duet {
namespace {

bool make_sockaddr(const Address& a, sockaddr_storage& ss, socklen_t& len) {
    std::memset(&ss, 0, sizeof ss);
    std::string host = a.host == "localhost" ? "127.0.0.1" : a.host;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
    if (unsigned char b[4]; parse_ipv4(host, b)) {
        std::memcpy(&v4->sin_addr, b, 4);
        v4->sin_family = AF_INET;
        v4->sin_port = htons(a.port);
        len = sizeof *v4;
        return true;
    }
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(a.port);
        len = sizeof *v6;
        return true;
    }
    return false;
}

// strerror's text starting in lower case, to read as the end of our sentence.
std::string reason(int err) {
    std::string r = std::strerror(err);
    if (!r.empty() && r[0] >= 'A' && r[0] <= 'Z') r[0] = char(r[0] - 'A' + 'a');
    return r;
}

bool is_listening_stream(int fd) {
    int type = 0, acc = 0;
    socklen_t len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) return false;
    len = sizeof acc;
    return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) == 0 && acc == 1;
}

void set_cloexec_nonblock(int fd) {
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

// The /proc/net/tcp form of an address: hex of the in-memory bytes, as the kernel prints them.
std::string proc_net_key(const Address& a) {
    sockaddr_storage ss;
    socklen_t len;
    if (!make_sockaddr(a, ss, len)) return "";
    char buf[64];
    if (ss.ss_family == AF_INET) {
        auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
        std::snprintf(buf, sizeof buf, "%08X:%04X", v4->sin_addr.s_addr, a.port);
    } else {
        auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
        std::uint32_t w[4];
        std::memcpy(w, &v6->sin6_addr, 16);
        std::snprintf(buf, sizeof buf, "%08X%08X%08X%08X:%04X", w[0], w[1], w[2], w[3], a.port);
    }
    return buf;
}

// The whole of a small /proc file ("" if unreadable). No iostreams: they would pull their
// locale machinery into a binary that otherwise needs none.
std::string slurp(const std::string& path) {
    std::string out;
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd.get(), buf, sizeof buf)) > 0) out.append(buf, std::size_t(n));
    return out;
}

// Inodes of sockets listening on `key` (or on the wildcard address with the same port).
std::vector<std::string> listening_inodes(const std::string& key, bool v6) {
    std::vector<std::string> inodes;
    std::string table = slurp(v6 ? "/proc/net/tcp6" : "/proc/net/tcp");
    std::string port = key.substr(key.find(':'));
    std::string any = std::string(v6 ? 32 : 8, '0') + port;
    std::size_t at = table.find('\n');  // skip the column titles
    while (at != std::string::npos && at + 1 < table.size()) {
        std::size_t end = table.find('\n', at + 1);
        std::string line = table.substr(at + 1, end == std::string::npos ? end : end - at - 1);
        at = end;
        char local[64], remote[64], state[8];
        unsigned long inode = 0;
        if (std::sscanf(line.c_str(), "%*d: %63s %63s %7s %*s %*s %*s %*s %*s %lu", local, remote,
                        state, &inode) != 4)
            continue;
        if (std::string_view(state) != "0A") continue;  // TCP_LISTEN
        if (key == local || any == local) inodes.push_back(std::to_string(inode));
    }
    return inodes;
}

}  // namespace

std::string find_port_holder(const Address& addr) {
    std::string key = proc_net_key(addr);
    if (key.empty()) return "";
    auto inodes = listening_inodes(key, key.size() > 13);
    if (inodes.empty()) return "";
    DIR* proc = opendir("/proc");
    if (!proc) return "";
    std::string found;
    // Never ourselves: if this process holds the port, naming its pid would send the user
    // hunting for a process they are running (the clash of --http and --files is caught earlier).
    std::string self = std::to_string(getpid());
    while (dirent* d = readdir(proc)) {
        if (d->d_name[0] < '1' || d->d_name[0] > '9' || d->d_name == self) continue;
        std::string fd_dir = std::string("/proc/") + d->d_name + "/fd";
        DIR* fds = opendir(fd_dir.c_str());
        if (!fds) continue;
        while (dirent* f = readdir(fds)) {
            char target[64];
            std::string link = fd_dir + "/" + f->d_name;
            ssize_t n = readlink(link.c_str(), target, sizeof target - 1);
            if (n <= 0) continue;
            target[n] = 0;
            for (auto& ino : inodes) {
                if (std::string_view(target) == "socket:[" + ino + "]") {
                    std::string name = slurp(std::string("/proc/") + d->d_name + "/comm");
                    while (!name.empty() && name.back() == '\n') name.pop_back();
                    found = std::string(" (pid ") + d->d_name + " " + name + ")";
                }
            }
            if (!found.empty()) break;
        }
        closedir(fds);
        if (!found.empty()) break;
    }
    closedir(proc);
    return found;
}

bool bind_listener(const Address& addr, Fd& out, std::string& error) {
    sockaddr_storage ss;
    socklen_t len;
    std::string where = format_address(addr);
    if (!make_sockaddr(addr, ss, len)) {
        error = "cannot listen on " + where + ": not an IP address";
        return false;
    }
    Fd fd(socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) {
        error = "cannot listen on " + where + ": " + reason(errno);
        return false;
    }
    int one = 1;
    // SO_REUSEADDR lets a restart bind over TIME_WAIT leftovers; it does not let two live
    // listeners share the port (that would need SO_REUSEPORT, which we never set).
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ss.ss_family == AF_INET6) setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
        int err = errno;
        error = "cannot listen on " + where + ": ";
        if (err == EADDRINUSE)
            error += "address already in use" + find_port_holder(addr);
        else
            error += reason(err);
        return false;
    }
    if (listen(fd.get(), SOMAXCONN) != 0) {
        error = "cannot listen on " + where + ": " + reason(errno);
        return false;
    }
    out = std::move(fd);
    return true;
}

std::string local_address(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
    char host[INET6_ADDRSTRLEN] = "?";
    Address a;
    if (ss.ss_family == AF_INET) {
        auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
        unsigned char b[4];
        std::memcpy(b, &v4->sin_addr, 4);
        std::string text = format_ipv4(b);
        std::memcpy(host, text.c_str(), text.size() + 1);
        a.port = ntohs(v4->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
        inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host);
        a.port = ntohs(v6->sin6_port);
    }
    a.host = host;
    return format_address(a);
}

bool adopt_passed_sockets(ListenSockets& out, std::vector<HandedConn>& conns, bool& adopted,
                          std::string& error) {
    adopted = false;
    const char* count = getenv("LISTEN_FDS");
    const char* pid = getenv("LISTEN_PID");
    std::string names = getenv("LISTEN_FDNAMES") ? getenv("LISTEN_FDNAMES") : "";
    std::string conn_list = getenv("DUET_CONN_FDS") ? getenv("DUET_CONN_FDS") : "";
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDNAMES");
    unsetenv("DUET_CONN_FDS");
    if (!count) return true;
    if (pid && std::strtol(pid, nullptr, 10) != getpid()) return true;  // meant for another
    char* end = nullptr;
    long n = std::strtol(count, &end, 10);
    if (*end || n < 1 || n > 64) {
        error = std::string("LISTEN_FDS='") + count + "' is not a count of sockets";
        return false;
    }
    std::vector<std::string> name_list;
    for (std::size_t at = 0; !names.empty() && at <= names.size();) {
        std::size_t colon = names.find(':', at);
        if (colon == std::string::npos) colon = names.size();
        name_list.push_back(names.substr(at, colon - at));
        at = colon + 1;
    }
    for (long i = 0; i < n; ++i) {
        int fd = 3 + int(i);
        if (!is_listening_stream(fd)) {
            error = "inherited fd " + std::to_string(fd) + " is not a listening stream socket";
            return false;
        }
        set_cloexec_nonblock(fd);
        std::string name = std::size_t(i) < name_list.size() ? name_list[std::size_t(i)] : "";
        bool is_http = name == "http" || (name.empty() || name == "unknown" ? i == 0 : false);
        bool is_files = name == "files" || (name.empty() || name == "unknown" ? i == 1 : false);
        if (is_http && !out.http) {
            out.http.reset(fd);
        } else if (is_files && !out.files) {
            out.files.reset(fd);
        } else {
            error = "inherited fd " + std::to_string(fd) + " has an unexpected name '" + name +
                    "' (want http and files)";
            return false;
        }
    }
    if (!out.http || !out.files) {
        error = "LISTEN_FDS must pass two sockets, named http and files";
        return false;
    }
    for (std::size_t at = 0; at < conn_list.size();) {
        std::size_t comma = conn_list.find(',', at);
        if (comma == std::string::npos) comma = conn_list.size();
        std::string item = conn_list.substr(at, comma - at);
        at = comma + 1;
        char kind = item.empty() ? 0 : item[0];
        if (kind != 'h' && kind != 'f' && kind != 'a') continue;
        int fd = std::atoi(item.c_str() + 1);
        int type = 0;
        socklen_t len = sizeof type;
        // Only a connected stream socket is taken; anything else is left alone.
        if (fd > 2 && getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
            type == SOCK_STREAM && !is_listening_stream(fd)) {
            set_cloexec_nonblock(fd);
            conns.push_back({fd, kind});
        }
    }
    adopted = true;
    return true;
}

}  // namespace duet
