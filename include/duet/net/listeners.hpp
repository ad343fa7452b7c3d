#pragma once
// Listening sockets: binding our addresses, adopting sockets passed by the systemd convention
// (LISTEN_FDS / LISTEN_PID / LISTEN_FDNAMES) from systemd or from our own reload, and telling who
// holds a taken port.
#include <string>
#include <vector>

#include "duet/core/config.hpp"
#include "duet/core/fd.hpp"

namespace duet {

struct ListenSockets {
    Fd http;
    Fd files;
};

// A client connection carried across a reload's execve, with what its session needs to go on.
struct HandedConn {
    int fd;
    char kind;  // 'h' HTTP, 'f' file port, 'a' file port already authenticated
};

// Binds and listens. On failure `error` is the whole line to print, e.g. "cannot listen on
// 127.0.0.1:8000: address already in use (pid 4242 duet)".
bool bind_listener(const Address& addr, Fd& out, std::string& error);

// Takes sockets passed in the environment, if any, and clears the variables.
// Returns false with `error` when they are present but unusable. `adopted` tells whether any were.
// `conns` gets connections handed over by a reload (DUET_CONN_FDS=h7,f8,a9).
bool adopt_passed_sockets(ListenSockets& out, std::vector<HandedConn>& conns, bool& adopted,
                          std::string& error);

// "127.0.0.1:8000" or "[::1]:8000" for a bound socket.
std::string local_address(int fd);

// Who listens on this address, as " (pid N name)", or "" if it cannot be found out.
std::string find_port_holder(const Address& addr);

}  // namespace duet
