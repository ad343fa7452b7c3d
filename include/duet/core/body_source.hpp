#pragma once
#include <cstddef>

namespace duet {

// A long body produced as the client reads (the listing of a big store): the connection asks for
// the next bytes whenever its output buffer has room, so the body is never held whole.
class BodySource {
  public:
    virtual ~BodySource() = default;
    // Writes the next bytes at `p`, at most `room`; returns how many. 0 while bytes are left:
    // the next piece needs more room.
    virtual std::size_t fill(char* p, std::size_t room) = 0;
    virtual bool done() const = 0;
};

}  // namespace duet
