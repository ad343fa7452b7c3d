#pragma once
// The base of both protocol sessions (HttpConn, FileConn): a connection whose host is a
// SessionHost. The connection keeps only its ConnHost reference (an idle connection does not grow
// by a pointer); a session reaches the services through host(), valid because every session is
// made with a SessionHost.
#include "duet/net/conn.hpp"
#include "duet/session/session_host.hpp"

namespace duet {

class Session : public Conn {
  protected:
    Session(SessionHost& host, int fd, Port port) : Conn(host, fd, port) {}
    SessionHost& host() const { return static_cast<SessionHost&>(host_); }
};

}  // namespace duet
