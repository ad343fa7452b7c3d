// The request-field parsers the routes use: percent-decoding, Range, digest fields, entity-tag
// lists and bearer tokens.
#include <criterion/criterion.h>

#include <cstdint>
#include <string>

#include "duet/core/base64.hpp"
#include "duet/core/sha256.hpp"
#include "duet/http/http_fields.hpp"

using duet::DigestField;
using duet::RangeResult;

namespace {

std::string b64(const duet::Digest& d) {
    return duet::base64_encode(d.data(), d.size());
}

const char* range_name(RangeResult r) {
    switch (r) {
        case RangeResult::Ignore:
            return "Ignore";
        case RangeResult::Satisfiable:
            return "Satisfiable";
        case RangeResult::Unsatisfiable:
            return "Unsatisfiable";
    }
    return "?";
}

struct RangeCase {
    const char* value;
    std::uint64_t size;
    RangeResult result;
    std::uint64_t start = 0;
    std::uint64_t length = 0;
};

constexpr RangeCase kRanges[] = {
    {"bytes=0-0", 10, RangeResult::Satisfiable, 0, 1},
    {"bytes=0-9", 10, RangeResult::Satisfiable, 0, 10},
    {"bytes=2-5", 10, RangeResult::Satisfiable, 2, 4},
    {"bytes=5-", 10, RangeResult::Satisfiable, 5, 5},
    {"bytes=9-", 10, RangeResult::Satisfiable, 9, 1},
    {"bytes=-3", 10, RangeResult::Satisfiable, 7, 3},
    {"bytes=-10", 10, RangeResult::Satisfiable, 0, 10},
    {"bytes=-100", 10, RangeResult::Satisfiable, 0, 10},  // longer suffix: the whole file
    {"bytes=5-100", 10, RangeResult::Satisfiable, 5, 5},  // end past the end clamps
    {"bytes=5-18446744073709551615", 10, RangeResult::Satisfiable, 5, 5},
    {"Bytes=1-1", 10, RangeResult::Satisfiable, 1, 1},  // unit is case-insensitive
    {" bytes=1-2 ", 10, RangeResult::Satisfiable, 1, 2},
    {"bytes=-0", 10, RangeResult::Unsatisfiable},
    {"bytes=10-", 10, RangeResult::Unsatisfiable},  // start past the end
    {"bytes=10-20", 10, RangeResult::Unsatisfiable},
    {"bytes=0-", 0, RangeResult::Unsatisfiable},  // nothing to select in an empty file
    {"bytes=-5", 0, RangeResult::Unsatisfiable},
    {"bytes=5-2", 10, RangeResult::Ignore},  // last before first: invalid, so ignored
    {"bytes=0-1,3-4", 10, RangeResult::Ignore},
    {"bytes=0-1, 3-4", 10, RangeResult::Ignore},
    {"bytes=", 10, RangeResult::Ignore},
    {"bytes=-", 10, RangeResult::Ignore},
    {"bytes=5", 10, RangeResult::Ignore},
    {"bytes=a-b", 10, RangeResult::Ignore},
    {"bytes=+1-2", 10, RangeResult::Ignore},
    {"bytes=1--2", 10, RangeResult::Ignore},
    {"bytes=--2", 10, RangeResult::Ignore},
    {"bytes=0x1-2", 10, RangeResult::Ignore},
    {"bytes=99999999999999999999-", 10, RangeResult::Unsatisfiable},       // past any end
    {"bytes=3-99999999999999999999", 10, RangeResult::Satisfiable, 3, 7},  // clamps
    {"bytes=-99999999999999999999", 10, RangeResult::Satisfiable, 0, 10},
    {"items=0-1", 10, RangeResult::Ignore},
    {"0-1", 10, RangeResult::Ignore},
    {"", 10, RangeResult::Ignore},
    {"garbage", 10, RangeResult::Ignore},
};

}  // namespace

Test(http_fields, percent_decode_good) {
    struct {
        const char* in;
        const char* out;
    } cases[] = {
        {"", ""},       {"abc", "abc"},     {"%2F", "/"},
        {"%2f", "/"},   {"a%20b", "a b"},   {"%41%42", "AB"},
        {"x%2e", "x."}, {"100%25", "100%"}, {"%e2%82%ac", "\xe2\x82\xac"},
    };
    for (const auto& c : cases) {
        std::string out = "junk";
        cr_assert(duet::percent_decode(c.in, out), "'%s'", c.in);
        cr_expect_str_eq(out.c_str(), c.out, "'%s'", c.in);
    }
    std::string out;
    cr_assert(duet::percent_decode("a%00b", out));
    cr_expect(out == std::string("a\0b", 3), "%%00 decodes to a NUL byte for the name check");
}

Test(http_fields, percent_decode_rejects_bad_escapes) {
    const char* bad[] = {"%", "%2", "%G1", "%1G", "a%", "a%2", "%%", "%-1", "%20%", "% 20"};
    for (const char* s : bad) {
        std::string out;
        cr_expect_not(duet::percent_decode(s, out), "accepted '%s'", s);
    }
}

Test(http_fields, parse_range_table) {
    for (const RangeCase& c : kRanges) {
        std::uint64_t start = 777, length = 777;
        RangeResult r = duet::parse_range(c.value, c.size, start, length);
        cr_expect(r == c.result, "'%s' of %llu: %s, want %s", c.value, (unsigned long long)c.size,
                  range_name(r), range_name(c.result));
        if (r == RangeResult::Satisfiable && c.result == RangeResult::Satisfiable) {
            cr_expect_eq(start, c.start, "'%s': start %llu", c.value, (unsigned long long)start);
            cr_expect_eq(length, c.length, "'%s': length %llu", c.value,
                         (unsigned long long)length);
        }
    }
}

Test(http_fields, digest_found_among_members) {
    duet::Digest want = duet::Sha256::of("hello");
    std::string value = "sha-512=:AAAA:, sha-256=:" + b64(want) + ":, md5=:x:";
    duet::Digest got{};
    cr_assert(duet::parse_digest_field(value, got) == DigestField::Found);
    cr_expect(got == want);
    std::string only = "sha-256=:" + b64(want) + ":";
    duet::Digest got2{};
    cr_assert(duet::parse_digest_field(only, got2) == DigestField::Found);
    cr_expect(got2 == want);
}

Test(http_fields, digest_malformed) {
    duet::Digest d = duet::Sha256::of("x");
    std::string good = b64(d);
    std::string short_one = duet::base64_encode(d.data(), 31);
    std::string long_one = good.substr(0, 43) + "A" + good.substr(0, 4);  // not 32 bytes either
    std::string cases[] = {
        "sha-256=:" + good,                       // no closing colon
        "sha-256=" + good,                        // not a byte sequence
        "sha-256=:" + good.substr(1) + ":",       // broken base64
        "sha-256=:" + good.substr(0, 43) + "*:",  // bad character
        "sha-256=:" + short_one + ":",            // 31 bytes
        "sha-256=:" + duet::base64_encode(d.data(), 30) + ":",
        "sha-256=:" + long_one + ":",
        "sha-256=::",  // empty
        "sha-256=:",   // one colon
    };
    for (const std::string& v : cases) {
        duet::Digest out{};
        cr_expect(duet::parse_digest_field(v, out) == DigestField::Malformed, "'%s'", v.c_str());
    }
}

Test(http_fields, digest_absent) {
    const char* cases[] = {
        "", "sha-512=:AAAA:", "md5=:x:, unixsum=:1:", "sha-2560=:AAAA:", "sha256=:AAAA:"};
    for (const char* v : cases) {
        duet::Digest out{};
        cr_expect(duet::parse_digest_field(v, out) == DigestField::Absent, "'%s'", v);
    }
}

Test(http_fields, etag_list_matches_star_lists_and_weak) {
    const char* tag = "\"abc123\"";
    cr_expect(duet::etag_list_matches("*", tag));
    cr_expect(duet::etag_list_matches(" * ", tag));
    cr_expect(duet::etag_list_matches("\"abc123\"", tag));
    cr_expect(duet::etag_list_matches("\"x\", \"abc123\"", tag));
    cr_expect(duet::etag_list_matches("\"x\",\"y\" ,  \"abc123\"  ", tag));
    cr_expect(duet::etag_list_matches("W/\"abc123\"", tag));
    cr_expect(duet::etag_list_matches("\"x\", W/\"abc123\"", tag));
    cr_expect_not(duet::etag_list_matches("\"abc12\"", tag));
    cr_expect_not(duet::etag_list_matches("abc123", tag));  // unquoted
    cr_expect_not(duet::etag_list_matches("\"x\", \"y\"", tag));
    cr_expect_not(duet::etag_list_matches("", tag));
    cr_expect_not(duet::etag_list_matches("w/\"abc123\"", tag));  // the prefix is case-sensitive
}

Test(http_fields, bearer_matches_only_the_exact_token) {
    const char* token = "s3cret-Token";
    cr_expect(duet::bearer_matches("Bearer s3cret-Token", token));
    cr_expect(duet::bearer_matches("bearer s3cret-Token", token));
    cr_expect(duet::bearer_matches("BEARER s3cret-Token", token));
    cr_expect(duet::bearer_matches("Bearer   s3cret-Token  ", token));
    cr_expect_not(duet::bearer_matches("Bearer s3cret-token", token));  // token is exact
    cr_expect_not(duet::bearer_matches("Bearer wrong", token));
    cr_expect_not(duet::bearer_matches("Bearer s3cret", token));         // a prefix
    cr_expect_not(duet::bearer_matches("Bearer s3cret-Token2", token));  // longer
    cr_expect_not(duet::bearer_matches("Bearer s3cret-Tokem", token));   // last byte differs
    cr_expect_not(duet::bearer_matches("s3cret-Token", token));          // no scheme
    cr_expect_not(duet::bearer_matches("Basic s3cret-Token", token));
    cr_expect_not(duet::bearer_matches("Bearers3cret-Token", token));
    cr_expect_not(duet::bearer_matches("Bearer", token));
    cr_expect_not(duet::bearer_matches("Bearer ", token));
    cr_expect_not(duet::bearer_matches("", token));
}

// ---- issue 9: every digest field, RFC 8941 dictionaries, dot-segments, trailers ----

Test(http_fields, digest_last_key_wins_and_unknown_algorithms_are_ignored) {
    duet::Digest right = duet::Sha256::of("right"), wrong = duet::Sha256::of("wrong");
    duet::Digest got{};
    std::string v = "sha-256=:" + b64(right) + ":, sha-256=:" + b64(wrong) + ":";
    cr_assert(duet::parse_digest_field(v, got) == DigestField::Found);
    cr_expect(got == wrong, "RFC 8941 §3.2: the last sha-256 wins");
    std::string u =
        "unknown-alg=:AAAA:;p=1, sha-512=(1 2), id=?1, n=-3.5, s=\"x\\\"y\", t=tok, "
        "sha-256=:" +
        b64(right) + ":;q";
    cr_assert(duet::parse_digest_field(u, got) == DigestField::Found, "%s", u.c_str());
    cr_expect(got == right);
}

Test(http_fields, digest_dictionary_syntax_errors_are_malformed) {
    duet::Digest d = duet::Sha256::of("x");
    std::string good = "sha-256=:" + b64(d) + ":";
    std::string cases[] = {
        good + ",",                        // trailing comma
        good + " x",                       // junk after a member
        "SHA-256=:" + b64(d) + ":",        // keys are lower case
        "md5=\"open, " + good,             // unterminated string
        "sha-512=:not base64!:, " + good,  // bad byte sequence
        ", " + good,                       // empty member
        "a=(1 2, " + good,                 // unclosed inner list
    };
    for (const std::string& v : cases) {
        duet::Digest out{};
        cr_expect(duet::parse_digest_field(v, out) == DigestField::Malformed, "'%s'", v.c_str());
    }
}

Test(http_fields, expected_digest_collects_every_field) {
    duet::Digest a = duet::Sha256::of("a"), b = duet::Sha256::of("b");
    duet::ExpectedDigest e;
    cr_assert(e.add("sha-512=:AAAA:"));
    cr_expect_not(e.any);
    cr_assert(e.add("sha-256=:" + b64(a) + ":"));
    cr_assert(e.add("sha-256=:" + b64(a) + ":"));
    cr_expect(e.any && !e.conflict && e.d == a);
    cr_assert(e.add("sha-256=:" + b64(b) + ":"));
    cr_expect(e.conflict, "two different digests can never both match");
    cr_expect_not(e.add("sha-256=:x"));
}

Test(http_fields, trailer_values_are_combined_per_name) {
    std::string combined;
    bool present = false;
    cr_assert(duet::trailer_value("Repr-Digest: a=1\nX: y\nrepr-digest:b=2\n", "repr-digest",
                                  combined, present));
    cr_expect(present);
    cr_expect(combined == "a=1, b=2", "%s", combined.c_str());
    cr_assert(duet::trailer_value("X: y\n", "repr-digest", combined, present));
    cr_expect_not(present);
    cr_expect_not(duet::trailer_value("Bad Name: y\n", "repr-digest", combined, present));
    cr_expect_not(duet::trailer_value(": y\n", "repr-digest", combined, present));
}

Test(http_fields, dot_segments_removed_as_rfc_3986_says) {
    struct {
        const char* in;
        const char* out;
    } cases[] = {
        {"/files/../healthz", "/healthz"},
        {"/a/../files/x", "/files/x"},
        {"/files/./x", "/files/x"},
        {"/a/b/c/./../../g", "/a/g"},
        {"/mid/content=5/../6", "/mid/6"},
        {"/..", "/"},
        {"/../../x", "/x"},
        {"/a/.", "/a/"},
        {"/a/..", "/"},
        {"/files/..x", "/files/..x"},
        {"/files/.hidden", "/files/.hidden"},
    };
    for (const auto& c : cases) {
        std::string got = duet::remove_dot_segments(c.in);
        cr_expect(got == c.out, "%s -> %s, want %s", c.in, got.c_str(), c.out);
    }
    cr_expect(duet::has_dot_segment("/files/../x"));
    cr_expect(duet::has_dot_segment("/files/."));
    cr_expect_not(duet::has_dot_segment("/files/..x"));
    cr_expect_not(duet::has_dot_segment("/files/a.txt"));
}

Test(http_fields, percent_decode_reports_where_an_escape_is_bad) {
    std::string out;
    std::size_t at = 0;
    cr_expect_not(duet::percent_decode("ab%zz", out, &at));
    cr_expect_eq(at, 3u);
    cr_expect_not(duet::percent_decode("abc%2", out, &at));
    cr_expect_eq(at, 4u);
}
