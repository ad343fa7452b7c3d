#include "duet/http/http_body.hpp"

#include "duet/core/text.hpp"

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

bool is_ws(char c) {
    return c == ' ' || c == '\t';
}

}  // namespace

// One byte of a chunk extension (not CR, LF or a control byte: the caller checked).
ChunkedDecoder::Status ChunkedDecoder::ext_byte(char c) {
    unsigned char u = static_cast<unsigned char>(c);
    switch (ext_) {
        case Ext::PreSemi:
            if (c == ';')
                ext_ = Ext::PreName;
            else if (!is_ws(c))
                return fail("Whitespace after a chunk size.");
            break;
        case Ext::PreName:
            if (is_tchar(u))
                ext_ = Ext::Name;
            else if (!is_ws(c))
                return fail("A chunk extension has an empty or invalid name.");
            break;
        case Ext::Name:
        case Ext::PostName:
            if (ext_ == Ext::Name && is_tchar(u)) break;
            if (c == '=')
                ext_ = Ext::PreVal;
            else if (c == ';')
                ext_ = Ext::PreName;
            else if (is_ws(c))
                ext_ = Ext::PostName;
            else
                return fail("A chunk extension name has invalid characters.");
            break;
        case Ext::PreVal:
            if (c == '"')
                ext_ = Ext::Quoted;
            else if (is_tchar(u))
                ext_ = Ext::Token;
            else if (!is_ws(c))
                return fail("A chunk extension value is not a token or a quoted string.");
            break;
        case Ext::Token:
            if (is_tchar(u)) break;
            if (c == ';')
                ext_ = Ext::PreName;
            else if (is_ws(c))
                ext_ = Ext::PostVal;
            else
                return fail("A chunk extension value is not a token or a quoted string.");
            break;
        case Ext::Quoted:
            if (c == '\\')
                ext_ = Ext::QuotedEsc;
            else if (c == '"')
                ext_ = Ext::PostVal;
            break;
        case Ext::QuotedEsc:
            ext_ = Ext::Quoted;
            break;
        case Ext::PostVal:
            if (c == ';')
                ext_ = Ext::PreName;
            else if (!is_ws(c))
                return fail("A chunk extension has bytes after its value.");
            break;
    }
    return Status::NeedMore;
}

// The CR that ends a chunk-size line with extensions: the extension must be complete.
ChunkedDecoder::Status ChunkedDecoder::ext_end() {
    switch (ext_) {
        case Ext::PreSemi:
            return fail("Whitespace after a chunk size.");
        case Ext::PreName:
            return fail("A chunk extension has an empty or invalid name.");
        case Ext::PreVal:
            return fail("A chunk extension has '=' but no value.");
        case Ext::Quoted:
        case Ext::QuotedEsc:
            return fail("A chunk extension has an unbalanced quote.");
        default:
            return Status::NeedMore;
    }
}

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
                    ext_ = c == ';' ? Ext::PreName : Ext::PreSemi;
                } else {
                    return fail("A chunk size is not hexadecimal.");
                }
                in.remove_prefix(1);
                break;
            case State::Ext:
                if (c == '\r') {
                    if (ext_end() == Status::Error) return Status::Error;
                    state_ = State::SizeLf;
                } else if (c == '\n') {
                    return fail("Chunk framing needs CRLF, not a bare LF.");
                } else if (!is_ext_byte(static_cast<unsigned char>(c))) {
                    return fail("A chunk extension has control characters.");
                } else {
                    if (++line_bytes_ > kMaxChunkExtension)
                        return fail("A chunk extension is too long.");
                    if (ext_byte(c) == Status::Error) return Status::Error;
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
                if (c != '\r') trailers_ += c;
                in.remove_prefix(1);
                break;
            case State::TrailerLf:
                if (c != '\n') return fail("Chunk framing has a bare CR.");
                // Every byte of the trailer lines counts toward the bound, their CRLFs too.
                if (++line_bytes_ > kMaxTrailers) return fail("The trailer section is too long.");
                trailers_ += '\n';
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

std::string ChunkedDecoder::save() const {
    std::string out;
    for (int i = 0; i < 8; ++i) out += static_cast<char>((remaining_ >> (8 * i)) & 0xff);
    for (int i = 0; i < 4; ++i) out += static_cast<char>((line_bytes_ >> (8 * i)) & 0xff);
    out += static_cast<char>(size_digits_);
    out += static_cast<char>(state_);
    out += static_cast<char>(ext_);
    out += static_cast<char>(trailer_has_colon_ ? 1 : 0);
    out += trailers_;  // the trailer lines kept so far, last
    return out;
}

bool ChunkedDecoder::restore(std::string_view s) {
    constexpr std::size_t kFixed = 16;
    if (s.size() < kFixed || s.size() - kFixed > kMaxTrailers) return false;
    auto byte = [&](std::size_t i) { return std::uint64_t(static_cast<unsigned char>(s[i])); };
    std::uint64_t remaining = 0, line = 0;
    for (int i = 0; i < 8; ++i) remaining |= byte(std::size_t(i)) << (8 * i);
    for (int i = 0; i < 4; ++i) line |= byte(std::size_t(8 + i)) << (8 * i);
    std::uint64_t digits = byte(12), state = byte(13), ext = byte(14), flags = byte(15);
    if (digits > 15 || remaining >> 60 != 0 || state > std::uint64_t(State::LastLf) ||
        ext > std::uint64_t(Ext::PostVal) || line > kMaxChunkExtension + kMaxTrailers || flags > 1)
        return false;
    ChunkedDecoder d;
    d.remaining_ = remaining;
    d.line_bytes_ = static_cast<std::uint32_t>(line);
    d.size_digits_ = static_cast<std::uint8_t>(digits);
    d.state_ = static_cast<State>(state);
    d.ext_ = static_cast<Ext>(ext);
    d.trailer_has_colon_ = flags & 1;
    d.trailers_ = std::string(s.substr(kFixed));
    *this = std::move(d);
    return true;
}

}  // namespace duet
