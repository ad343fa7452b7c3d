// libFuzzer target for the resumable chunked-body decoder (RFC 9112 §7.1, README "HTTP API").
//
// The input is fed once whole and once in pieces whose sizes come from the input itself (each
// piece its own exact-size heap copy, so an over-read is an ASan report). Both runs must give the
// same decoded bytes, the same outcome (Done / Error / NeedMore), the same bytes left after the
// body, and every Data view must lie inside the piece that was handed in.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "duet/http/http_body.hpp"

using namespace duet;

namespace {

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "fuzz_chunked: property violated: %s\n", what);
    std::abort();
}

#define CHECK(cond)               \
    do {                          \
        if (!(cond)) fail(#cond); \
    } while (0)

struct Outcome {
    ChunkedDecoder::Status last = ChunkedDecoder::Status::NeedMore;
    std::string decoded;
    std::string leftover;  // input after Done
    std::string error;
};

// Feeds one piece; returns false once the decoder finished (Done or Error).
bool feed(ChunkedDecoder& dec, const char* p, std::size_t n, Outcome& out) {
    std::unique_ptr<char[]> copy(new char[n ? n : 1]);
    if (n) std::memcpy(copy.get(), p, n);
    std::string_view in(copy.get(), n);
    // Each call consumes at least one byte or returns; bound the loop anyway.
    for (std::size_t guard = 0; guard <= n + 2; ++guard) {
        std::string_view data;
        const char* before = in.data();
        std::size_t before_size = in.size();
        auto st = dec.decode(in, data);
        CHECK(in.data() >= before && in.data() + in.size() == before + before_size);
        out.last = st;
        switch (st) {
            case ChunkedDecoder::Status::Data:
                CHECK(!data.empty());
                CHECK(data.data() >= copy.get() && data.data() + data.size() <= copy.get() + n);
                // The data handed out is what was consumed just before `in`.
                CHECK(data.data() + data.size() == in.data());
                out.decoded.append(data);
                continue;
            case ChunkedDecoder::Status::NeedMore:
                CHECK(in.empty());
                return true;
            case ChunkedDecoder::Status::Done:
                out.leftover.assign(in);
                return false;
            case ChunkedDecoder::Status::Error:
                CHECK(dec.error() != nullptr && dec.error()[0] != '\0');
                out.error = dec.error();
                // An error is final: feeding more changes nothing.
                {
                    std::string_view more("0\r\n\r\n"), d;
                    CHECK(dec.decode(more, d) == ChunkedDecoder::Status::Error);
                }
                return false;
        }
    }
    fail("decode made no progress");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const char* p = reinterpret_cast<const char*>(data);

    Outcome whole;
    {
        ChunkedDecoder dec;
        feed(dec, p, size, whole);
    }

    std::uint32_t seed = 2166136261u;
    for (std::size_t i = 0; i < size && i < 8; ++i) seed = (seed ^ data[i]) * 16777619u;
    seed ^= std::uint32_t(size) * 2654435761u;
    // Two piece patterns: small random pieces, and one byte at a time for short inputs.
    for (int pattern = 0; pattern < 2; ++pattern) {
        if (pattern == 1 && size > 512) break;
        Outcome parts;
        ChunkedDecoder dec;
        std::size_t off = 0;
        bool going = true;
        while (off < size && going) {
            std::size_t piece = 1;
            if (pattern == 0) {
                seed = seed * 1103515245u + 12345u;
                piece = 1 + (seed >> 16) % 17;
            }
            if (piece > size - off) piece = size - off;
            going = feed(dec, p + off, piece, parts);
            off += piece;
        }
        if (!going && parts.last == ChunkedDecoder::Status::Done)
            parts.leftover.append(p + off, size - off);
        if (size == 0) parts.last = ChunkedDecoder::Status::NeedMore;
        if (parts.last != whole.last) {
            std::fprintf(stderr, "pattern %d: status %d in pieces, %d whole (%s | %s)\n", pattern,
                         int(parts.last), int(whole.last), parts.error.c_str(),
                         whole.error.c_str());
            fail("the outcome depends on how the input was split");
        }
        CHECK(parts.decoded == whole.decoded);
        CHECK(parts.leftover == whole.leftover);
        CHECK(parts.error == whole.error);
    }
    return 0;
}
