// A streamed body's rest written ahead for a reload, a turn at a time (see rest_writer.hpp).
#include "duet/net/rest_writer.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <vector>

#include "duet/net/conn.hpp"

namespace duet {

RestWriter::RestWriter(BodySource& source) : source_(source) {
    // Test hook (README "Stop and reload"): the memory file takes this many bytes and then
    // refuses more with ENOSPC; 0: it cannot be made at all. Exercises the fall-back.
    if (const char* v = std::getenv("DUET_TEST_LISTING_MEMFD")) limit_ = std::strtoull(v, 0, 10);
    if (limit_ > 0) mem_.reset(::memfd_create("duet-listing", MFD_CLOEXEC));
    in_memory_ = !mem_;
    if (in_memory_) error_ = limit_ > 0 ? errno : ENOSPC;
    finished_ = source_.done();
}

bool RestWriter::step(std::size_t bytes) {
    // One loop thread renders: one scratch turn for every writer.
    static std::vector<char> buf(kChunk);
    std::size_t spent = 0;
    while (!finished_ && spent < bytes) {
        if (in_memory_ && mem_) {
            failed_ = finished_ = !read_back(spent);
            continue;
        }
        if (source_.done()) {
            finished_ = true;
            break;
        }
        std::size_t n = source_.fill(buf.data(), buf.size());
        if (n == 0) {  // no progress with a whole turn of room: the length cannot be kept
            failed_ = finished_ = true;
            break;
        }
        spent += n;
        if (in_memory_)
            bytes_.append(buf.data(), n);
        else
            write_out(buf.data(), n);
    }
    return finished_;
}

void RestWriter::write_out(const char* p, std::size_t n) {
    std::size_t off = 0;
    while (off < n) {
        std::size_t want = std::size_t(std::min<std::uint64_t>(n - off, limit_ - written_));
        ssize_t w = -1;
        if (want == 0)
            errno = ENOSPC;
        else
            w = ::pwrite(mem_.get(), p + off, want, off_t(written_));
        if (w < 0 && errno == EINTR) continue;
        if (w == 0) errno = ENOSPC;
        if (w <= 0) break;
        off += std::size_t(w);
        written_ += std::uint64_t(w);
    }
    if (off < n) to_memory(p + off, n - off);
}

void RestWriter::to_memory(const char* unwritten, std::size_t n) {
    // ENOSPC or ENOMEM: what the file holds comes back into memory first (read_back, in turns),
    // then these bytes, then the rest of the source.
    error_ = errno;
    in_memory_ = true;
    unwritten_.assign(unwritten, n);
    read_ = 0;
}

bool RestWriter::read_back(std::size_t& spent) {
    if (read_ < written_) {
        std::size_t want = std::min<std::uint64_t>(kChunk, written_ - read_);
        std::size_t at = bytes_.size();
        bytes_.resize(at + want);
        ssize_t r = ::pread(mem_.get(), bytes_.data() + at, want, off_t(read_));
        bytes_.resize(at + (r > 0 ? std::size_t(r) : 0));
        if (r < 0 && errno == EINTR) return true;
        if (r <= 0) return false;  // those bytes cannot be had again: nothing right can be sent
        read_ += std::uint64_t(r);
        spent += std::size_t(r);
        return true;
    }
    bytes_ += unwritten_;
    unwritten_ = std::string();
    mem_.reset();
    return true;
}

Fd RestWriter::take_file(std::uint64_t& size) {
    size = 0;
    if (in_memory_ || !mem_ || written_ == 0) return Fd();
    size = written_;
    return std::move(mem_);
}

}  // namespace duet
