#pragma once
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "duet/core/fd.hpp"

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
    // After fill() stopped short: a file range to send next as it is (sendfile), then fill() goes
    // on (a folder's tar). false: none.
    virtual bool take_file(Fd&, off_t&, std::uint64_t&) { return false; }
    // The body cannot be had at its promised length any more: the connection closes.
    virtual bool failed() const { return false; }
    // Whether a reload may write the rest ahead into memory (a listing). A source that says no
    // crosses a reload as its state instead (encode), which the protocol turns back into a source
    // in the next image; one that cannot encode itself is cut.
    virtual bool can_write_ahead() const { return true; }
    virtual bool encode(std::string&) const { return false; }
};

}  // namespace duet
