#pragma once
// The field list every hand-over record is made of (STYLE pattern 16): a flat run of
// (u16 tag, u32 length, value) fields. Each owner (the shared connection, HTTP, the file port, an
// upload) numbers its own tags, writes the fields it has and reads back the ones it knows, so
// adding a field is one line in its encoder and one in its decoder; unknown tags are skipped,
// so an image that does not know a new optional field still reads the record. File descriptors
// are written as an index into the hand-over's fd table.
//
// Reading parses untrusted bytes (a hand-over memfd could come from any image): every length is
// checked against the record, every index against the fd table, and nothing is trusted before
// `parse` accepted the framing.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "duet/core/fd.hpp"

namespace duet {

// The fds passed with a hand-over. Writing: the record writers append fds they give away.
// Reading: each fd can be claimed once; what nobody claimed is closed with the table.
// Little-endian integers of 1–8 bytes: the byte order of every hand-over field and header.
void put_le(std::string& out, std::uint64_t v, int bytes);
std::uint64_t get_le(const char* p, int bytes);

class HandoverFds {
  public:
    // Takes ownership; returns the index a record refers to it by.
    std::uint32_t add(Fd fd) {
        fds_.push_back(std::move(fd));
        return static_cast<std::uint32_t>(fds_.size() - 1);
    }
    // Claims fd `index`. false when out of range or already claimed.
    bool take(std::uint64_t index, Fd& out) {
        if (index >= fds_.size() || !fds_[index]) return false;
        out = std::move(fds_[index]);
        return true;
    }
    std::size_t size() const { return fds_.size(); }
    int at(std::size_t i) const { return fds_[i].get(); }
    void release_all() {
        for (Fd& f : fds_) f.release();
    }
    void clear() { fds_.clear(); }

  private:
    std::vector<Fd> fds_;
};

class RecordWriter {
  public:
    explicit RecordWriter(HandoverFds& fds) : fds_(&fds) {}
    void u64(std::uint16_t tag, std::uint64_t v);
    void flag(std::uint16_t tag, bool v) {
        if (v) u64(tag, 1);
    }
    void bytes(std::uint16_t tag, std::string_view v);
    void fd(std::uint16_t tag, Fd f) { u64(tag, fds_->add(std::move(f))); }
    // A nested record (an upload inside a connection) with its own tag space.
    RecordWriter child() const { return RecordWriter(*fds_); }
    void record(std::uint16_t tag, const RecordWriter& sub) { bytes(tag, sub.data()); }
    const std::string& data() const { return out_; }
    std::string take() { return std::move(out_); }

  private:
    HandoverFds* fds_;
    std::string out_;
};

class RecordReader {
  public:
    explicit RecordReader(HandoverFds& fds) : fds_(&fds) {}
    // Checks the framing of the whole record. false (with error()) when a field runs past the end.
    bool parse(std::string_view body);

    bool has(std::uint16_t tag) const { return find(tag) != nullptr; }
    // The last value of `tag`. u64: false when absent or not 8 bytes long.
    bool u64(std::uint16_t tag, std::uint64_t& out) const;
    std::uint64_t u64_or(std::uint16_t tag, std::uint64_t fallback) const;
    // Absent is false (a flag is written only when set); any other width is an error.
    bool flag(std::uint16_t tag) const { return u64_or(tag, 0) != 0; }
    std::string_view bytes(std::uint16_t tag) const;
    // Every value of a repeated tag, in order.
    std::vector<std::string_view> all(std::uint16_t tag) const;
    // Claims the fd the field refers to. false when absent, bad or already claimed.
    bool fd(std::uint16_t tag, Fd& out) const;
    bool record(std::uint16_t tag, RecordReader& sub) const;
    RecordReader child() const { return RecordReader(*fds_); }

    // Decoders report their first problem here; the caller logs it and drops the connection.
    bool fail(std::string why) {
        if (error_.empty()) error_ = std::move(why);
        return false;
    }
    const std::string& error() const { return error_; }

  private:
    struct Field {
        std::uint16_t tag;
        std::string_view value;
    };
    const Field* find(std::uint16_t tag) const;

    HandoverFds* fds_;
    std::vector<Field> fields_;
    std::string error_;
};

}  // namespace duet
