// Resumable-upload field parsers (upload_fields.cpp) and the SHA-256 state save/load that lets a
// partial upload resume without rehashing.
#include <criterion/criterion.h>

#include <string>

#include "duet/core/base64.hpp"
#include "duet/core/sha256.hpp"
#include "duet/http/upload_fields.hpp"
#include "duet/store/partial_store.hpp"

using namespace duet;

Test(upload_fields, sf_boolean_takes_only_question_one_and_zero) {
    bool b = false;
    cr_expect(parse_sf_boolean("?1", b) && b);
    cr_expect(parse_sf_boolean(" ?0 ", b) && !b);
    cr_expect(parse_sf_boolean("?1;a=b", b) && b, "parameters are ignored");
    for (const char* bad : {"", "1", "true", "?", "?2", "?10", "? 1"})
        cr_expect(!parse_sf_boolean(bad, b), "'%s' accepted", bad);
}

Test(upload_fields, sf_uint_is_up_to_15_digits) {
    std::uint64_t v = 0;
    cr_expect(parse_sf_uint("0", v) && v == 0);
    cr_expect(parse_sf_uint("123456789", v) && v == 123456789);
    cr_expect(parse_sf_uint("999999999999999", v) && v == 999999999999999ull);
    for (const char* bad : {"", "-1", "+1", "1.5", "1e3", "0x10", "1000000000000000", "1 2"})
        cr_expect(!parse_sf_uint(bad, v), "'%s' accepted", bad);
}

Test(upload_fields, interop_versions_6_to_8_only) {
    cr_expect_eq(supported_interop_version("6"), 6);
    cr_expect_eq(supported_interop_version("8"), 8);
    cr_expect_eq(supported_interop_version("5"), 0);
    cr_expect_eq(supported_interop_version("9"), 0);
    cr_expect_eq(supported_interop_version("x"), 0);
}

Test(upload_fields, tus_metadata_gives_the_filename) {
    std::string name;
    cr_expect_eq(parse_tus_metadata("filename YS50eHQ=,filetype dGV4dC9wbGFpbg==", name),
                 FieldResult::Found);
    cr_expect_eq(name, "a.txt");
    name.clear();
    cr_expect_eq(parse_tus_metadata("is_confidential,filename Yg==", name), FieldResult::Found,
                 "a key without a value is allowed");
    cr_expect_eq(name, "b");
    cr_expect_eq(parse_tus_metadata("name Yw==", name), FieldResult::Found);
    cr_expect_eq(name, "c");
    cr_expect_eq(parse_tus_metadata("filename ZA==,name ZQ==", name), FieldResult::Found);
    cr_expect_eq(name, "d", "filename wins over name");
    cr_expect_eq(parse_tus_metadata("filetype dGV4dA==", name), FieldResult::Absent);
    cr_expect_eq(parse_tus_metadata("filename !!!", name), FieldResult::Malformed);
    cr_expect_eq(parse_tus_metadata("filename YQ== Yg==", name), FieldResult::Malformed);
}

Test(upload_fields, tus_checksum_sha256_only) {
    Digest want = Sha256::of("hello"), got{};
    std::string b64 = base64_encode(want.data(), want.size());
    cr_expect_eq(parse_tus_checksum("sha256 " + b64, got), ChecksumResult::Ok);
    cr_expect(got == want);
    cr_expect_eq(parse_tus_checksum("sha1 " + b64, got), ChecksumResult::Unsupported);
    cr_expect_eq(parse_tus_checksum("sha256 aGVsbG8=", got), ChecksumResult::Malformed,
                 "a digest of the wrong size");
    cr_expect_eq(parse_tus_checksum("sha256", got), ChecksumResult::Malformed);
    cr_expect_eq(parse_tus_checksum("sha256 %%%", got), ChecksumResult::Malformed);
}

Test(sha256_state, save_and_load_resume_at_every_block_position) {
    std::string data;
    for (int i = 0; i < 300; ++i) data += char('a' + i % 26);
    Digest whole = Sha256::of(data);
    for (std::size_t cut = 0; cut <= data.size(); cut += 7) {
        Sha256 a;
        a.update(data.data(), cut);
        std::string saved = sha_state_text(a);
        Sha256 b;
        cr_assert(sha_state_from_text(saved, b), "cut %zu: saved state not loadable", cut);
        cr_expect_eq(b.bytes(), cut);
        b.update(data.data() + cut, data.size() - cut);
        cr_expect(b.finish() == whole, "cut %zu: resumed digest differs", cut);
    }
}

Test(sha256_state, load_refuses_damaged_text) {
    Sha256 a;
    a.update("abc", 3);
    std::string s = sha_state_text(a);
    Sha256 b;
    cr_expect(!sha_state_from_text(s.substr(0, s.size() - 1), b), "a truncated state loaded");
    cr_expect(!sha_state_from_text(s + "00", b), "a state with extra bytes loaded");
    std::string bad = s;
    bad[0] = 'g';
    cr_expect(!sha_state_from_text(bad, b), "a non-hex state loaded");
    cr_expect(!sha_state_from_text("", b));
}

// The state file's format from before Sha256::save() became binary (issue 12): state files
// written then must still load.
Test(sha256_state, text_format_is_the_state_file_format) {
    Sha256 a;
    a.update("abc", 3);
    std::string want =
        "6a09e667bb67ae853c6ef372a54ff53a510e527f9b05688c1f83d9ab5be0cd19"
        "0000000000000003"
        "616263";
    cr_expect_eq(sha_state_text(a), want);
    Sha256 b;
    cr_assert(sha_state_from_text(want, b));
    b.update("def", 3);
    cr_expect(b.finish() == Sha256::of("abcdef"));
}
