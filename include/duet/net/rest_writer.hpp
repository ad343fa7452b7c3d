#pragma once
// The rest of a body rendered as the client reads (a big listing, conn.hpp BodySource), written
// ahead for a reload: the next image cannot render it (its index does not hold the snapshot the
// client was promised), so the old one puts it into an anonymous memory file that the hand-over
// carries as a file range. It goes a step at a time (Server::prepare_slice: about 1 ms per loop
// step, round-robin over the streams), so no loop step grows with the store.
//
// If the memory file cannot be made or written (ENOMEM, ENOSPC), the rest goes into memory
// instead and travels in the hand-over record as bytes: what the file already holds is read back
// first, a step at a time too, then the source goes on into memory. Nothing is lost or reordered.
#include <cstdint>
#include <string>

#include "duet/core/fd.hpp"

namespace duet {

class BodySource;

class RestWriter {
  public:
    // Bytes taken from the source (or read back) per turn: one turn costs ~0.1 ms.
    static constexpr std::size_t kChunk = 64 << 10;

    explicit RestWriter(BodySource& source);
    // Up to about `bytes` more (whole turns); true once the whole rest is written.
    bool step(std::size_t bytes);
    bool finished() const { return finished_; }
    // The source stopped short of its promised length (cannot happen while it keeps what changed
    // ahead of it): the connection must close rather than send a body of the wrong length.
    bool failed() const { return failed_; }
    // Why the memory file could not be had (errno), or 0: then the rest is a file.
    int memfd_error() const { return error_; }
    // Once finished: the rest as a memory file [0, size), or (fall-back) as bytes.
    Fd take_file(std::uint64_t& size);
    std::string take_bytes() { return std::move(bytes_); }

  private:
    void write_out(const char* p, std::size_t n);
    void to_memory(const char* unwritten, std::size_t n);
    bool read_back(std::size_t& spent);

    BodySource& source_;
    Fd mem_;
    std::uint64_t written_ = 0;    // bytes in mem_
    std::uint64_t limit_ = ~0ull;  // test hook: mem_ refuses bytes past this (ENOSPC)
    std::uint64_t read_ = 0;       // bytes of mem_ copied into bytes_ (fall-back)
    std::string bytes_;            // the fall-back: the rest in memory
    std::string unwritten_;        // what mem_ refused, after the read-back
    int error_ = 0;
    bool in_memory_ = false;
    bool finished_ = false;
    bool failed_ = false;
};

}  // namespace duet
