#pragma once
// Request-body framing: a resumable decoder for chunked transfer coding (RFC 9112 §7.1). Unlike
// the head parser it keeps state, because a body is streamed and never held whole. It hands out
// views of the chunk data inside the input, so nothing is copied.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace duet {

inline constexpr std::size_t kMaxChunkExtension = 4096;  // per chunk line
inline constexpr std::size_t kMaxTrailers = 8192;        // all trailer lines together

class ChunkedDecoder {
  public:
    enum class Status : std::uint8_t { NeedMore, Data, Done, Error };

    // Consumes bytes from `in` (advancing it) until it has chunk data to hand out (Data, with
    // `data` pointing into the consumed input), needs more input (NeedMore, `in` used up), has
    // read the whole body with its trailers (Done; bytes after the body stay in `in`), or found a
    // framing error (Error, `error()` says why).
    Status decode(std::string_view& in, std::string_view& data);
    const char* error() const { return error_; }
    void reset() { *this = ChunkedDecoder{}; }
    // The trailer section once Done: its field lines, each ended by '\n' (CRLF turned into LF).
    // Kept because fields such as Repr-Digest may come there (README "Digests").
    std::string_view trailers() const { return trailers_; }
    // The decoder's position as bytes, to carry a body across a reload; restore() checks every
    // part and returns false (the decoder unchanged) for anything it could not have produced.
    std::string save() const;
    bool restore(std::string_view saved);

  private:
    enum class State : std::uint8_t {
        Size,
        SizeDone,
        Ext,
        SizeLf,
        Data,
        DataCr,
        DataLf,
        TrailerStart,
        Trailer,
        TrailerLf,
        LastLf
    };
    Status fail(const char* why) {
        error_ = why;
        state_ = State::Size;
        failed_ = true;
        return Status::Error;
    }
    // Where we are inside a chunk extension: `;name[=token|"quoted"]`, repeated (RFC 9112 §7.1.1).
    enum class Ext : std::uint8_t {
        PreSemi,
        PreName,
        Name,
        PostName,
        PreVal,
        Token,
        Quoted,
        QuotedEsc,
        PostVal
    };
    Status ext_byte(char c);
    Status ext_end();

    std::string trailers_;
    std::uint64_t remaining_ = 0;
    std::uint32_t line_bytes_ = 0;  // extension or trailer bytes seen so far
    std::uint8_t size_digits_ = 0;
    State state_ = State::Size;
    bool failed_ = false;
    Ext ext_ = Ext::PreSemi;
    bool trailer_has_colon_ = false;
    const char* error_ = "";
};

}  // namespace duet
