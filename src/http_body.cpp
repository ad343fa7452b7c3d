#include "duet/http_body.hpp"

namespace duet {
namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool is_ext_byte(unsigned char c) {
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

}  // namespace

ChunkedDecoder::Status ChunkedDecoder::decode(std::string_view& in, std::string_view& data) {
    if (failed_) return Status::Error;
    while (!in.empty()) {
        char c = in.front();
        switch (state_) {
            case State::Size: {
                int v = hex_value(c);
                if (v < 0) {
                    if (size_digits_ == 0) return fail("A chunk size is not hexadecimal.");
                    state_ = State::SizeDone;
                    continue;  // look at this byte again
                }
                // 15 hex digits keep the size below 2^60: larger is an overflow attempt.
                if (++size_digits_ > 15) return fail("A chunk size is too large.");
                remaining_ = remaining_ * 16 + std::uint64_t(v);
                in.remove_prefix(1);
                break;
            }
            case State::SizeDone:
                if (c == '\r') {
                    state_ = State::SizeLf;
                } else if (c == ';' || c == ' ' || c == '\t') {
                    state_ = State::Ext;
                    line_bytes_ = 1;  // the extension's bytes count from this one
                    // BWS is allowed only before a ';' (RFC 9112 §7.1.1).
                    semicolon_seen_ = c == ';';
                } else {
                    return fail("A chunk size is not hexadecimal.");
                }
                in.remove_prefix(1);
                break;
            case State::Ext:
                if (c == '\r') {
                    if (!semicolon_seen_) return fail("Whitespace after a chunk size.");
                    state_ = State::SizeLf;
                } else if (c == '\n') {
                    return fail("Chunk framing needs CRLF, not a bare LF.");
                } else if (!is_ext_byte(static_cast<unsigned char>(c))) {
                    return fail("A chunk extension has control characters.");
                } else {
                    if (c == ';') semicolon_seen_ = true;
                    if (!semicolon_seen_ && c != ' ' && c != '\t')
                        return fail("Whitespace after a chunk size.");
                    if (++line_bytes_ > kMaxChunkExtension)
                        return fail("A chunk extension is too long.");
                }
                in.remove_prefix(1);
                break;
            case State::SizeLf:
                if (c != '\n') return fail("Chunk framing has a bare CR.");
                in.remove_prefix(1);
                size_digits_ = 0;
                if (remaining_ == 0) {
                    state_ = State::TrailerStart;
                    line_bytes_ = 0;
                } else {
                    state_ = State::Data;
                }
                break;
            case State::Data: {
                std::size_t n = in.size() < remaining_ ? in.size() : std::size_t(remaining_);
                data = in.substr(0, n);
                in.remove_prefix(n);
                remaining_ -= n;
                if (remaining_ == 0) state_ = State::DataCr;
                return Status::Data;
            }
            case State::DataCr:
                if (c != '\r') return fail("Chunk data is not followed by CRLF.");
                state_ = State::DataLf;
                in.remove_prefix(1);
                break;
            case State::DataLf:
                if (c != '\n') return fail("Chunk data is not followed by CRLF.");
                state_ = State::Size;
                in.remove_prefix(1);
                break;
            case State::TrailerStart:
                if (c == '\r') {
                    state_ = State::LastLf;
                } else if (c == '\n') {
                    return fail("Chunk framing needs CRLF, not a bare LF.");
                } else {
                    state_ = State::Trailer;
                    trailer_has_colon_ = false;
                    continue;
                }
                in.remove_prefix(1);
                break;
            case State::Trailer:
                // Trailer fields are read and dropped; they must still be well-formed and bounded.
                if (++line_bytes_ > kMaxTrailers) return fail("The trailer section is too long.");
                if (c == '\r') {
                    if (!trailer_has_colon_) return fail("A trailer line has no colon.");
                    state_ = State::TrailerLf;
                } else if (c == '\n') {
                    return fail("Chunk framing needs CRLF, not a bare LF.");
                } else if (!is_ext_byte(static_cast<unsigned char>(c))) {
                    return fail("A trailer line has control characters.");
                } else if (c == ':') {
                    trailer_has_colon_ = true;
                }
                in.remove_prefix(1);
                break;
            case State::TrailerLf:
                if (c != '\n') return fail("Chunk framing has a bare CR.");
                // Every byte of the trailer lines counts toward the bound, their CRLFs too.
                if (++line_bytes_ > kMaxTrailers) return fail("The trailer section is too long.");
                state_ = State::TrailerStart;
                in.remove_prefix(1);
                break;
            case State::LastLf:
                if (c != '\n') return fail("Chunk framing has a bare CR.");
                in.remove_prefix(1);
                state_ = State::Size;
                remaining_ = 0;
                return Status::Done;
        }
    }
    return Status::NeedMore;
}

}  // namespace duet
