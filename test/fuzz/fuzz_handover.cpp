// libFuzzer target for the reload hand-over reader (issue 12): the container, the record field
// lists (nested), and the state decoders an upload's record feeds (SHA-256 and chunked decoder).
//
// The input is read as a container; when that fails, as one record body. Properties: nothing is
// read outside the (exact-size, heap) input; every view a reader hands out lies inside it; a
// container that parses re-describes itself consistently; a restored SHA-256 or decoder state
// saves back to the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "duet/core/handover.hpp"
#include "duet/core/handover_record.hpp"
#include "duet/core/sha256.hpp"
#include "duet/http/http_body.hpp"

using namespace duet;

namespace {

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "fuzz_handover: property violated: %s\n", what);
    std::abort();
}

#define CHECK(cond)               \
    do {                          \
        if (!(cond)) fail(#cond); \
    } while (0)

bool inside(std::string_view v, const char* base, std::size_t n) {
    return v.empty() || (v.data() >= base && v.data() + v.size() <= base + n);
}

void read_record(std::string_view body, const char* base, std::size_t n, int depth) {
    HandoverFds fds;  // empty: every fd claim must fail cleanly
    RecordReader r(fds);
    if (!r.parse(body)) {
        CHECK(!r.error().empty());
        return;
    }
    for (std::uint16_t tag = 0; tag < 48; ++tag) {
        std::string_view v = r.bytes(tag);
        CHECK(inside(v, base, n));
        for (std::string_view e : r.all(tag)) CHECK(inside(e, base, n));
        std::uint64_t x;
        if (r.u64(tag, x)) CHECK(r.bytes(tag).size() == 8);
        Fd f;
        CHECK(!r.fd(tag, f));
        Sha256 sha;
        if (sha.restore(v)) CHECK(sha.save() == v);
        ChunkedDecoder dec;
        if (dec.restore(v)) {
            CHECK(dec.save() == v);
            std::string_view more("0\r\n\r\n"), data;
            (void)dec.decode(more, data);
        }
        if (depth < 3 && r.has(tag)) {
            RecordReader sub = r.child();
            if (r.record(tag, sub)) read_record(v, base, n, depth + 1);
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::unique_ptr<char[]> copy(new char[size ? size : 1]);
    if (size) std::memcpy(copy.get(), data, size);
    std::string_view in(copy.get(), size);
    std::vector<int> fds;
    std::vector<HandoverIn::Record> records;
    std::string err;
    if (parse_handover(in, fds, records, err)) {
        for (const auto& rec : records) {
            CHECK(inside(rec.body, copy.get(), size));
            read_record(rec.body, copy.get(), size, 0);
        }
    } else {
        CHECK(!err.empty());
        CHECK(records.empty());
        read_record(in, copy.get(), size, 0);
    }
    std::string seen;
    (void)check_reads_format(in, kHandoverFormat, seen);
    return 0;
}
