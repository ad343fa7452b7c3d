// libFuzzer target for the resumable-upload field parsers (upload_fields.cpp) and the SHA-256
// state loader that reads what a partial upload's state file holds.
//
// Checked: nothing crashes or over-reads; a value parsed as a boolean or integer prints back to
// something that parses to the same value; a loaded hash state saves back to the same text.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "duet/core/sha256.hpp"
#include "duet/http/upload_fields.hpp"

using namespace duet;

namespace {
[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "fuzz_upload_fields: property violated: %s\n", what);
    std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    bool b = false;
    if (parse_sf_boolean(in, b)) {
        bool again = !b;
        if (!parse_sf_boolean(b ? "?1" : "?0", again) || again != b) fail("boolean round trip");
    }
    std::uint64_t v = 0;
    if (parse_sf_uint(in, v)) {
        std::uint64_t again = v + 1;
        if (!parse_sf_uint(std::to_string(v), again) || again != v) fail("integer round trip");
        if (v > 999999999999999ull) fail("more than 15 digits");
    }
    (void)supported_interop_version(in);
    std::string name;
    (void)parse_tus_metadata(in, name);
    Digest d{};
    (void)parse_tus_checksum(in, d);
    Sha256 s;
    if (sha_state_from_text(in, s)) {
        if (sha_state_text(s) != in) fail("hash state round trip");
        (void)s.finish();
    }
    return 0;
}
