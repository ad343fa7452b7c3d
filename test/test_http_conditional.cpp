// evaluate_conditions: RFC 9110 §13.2.2 as a table (header × method × exists/missing ×
// true/false), plus the entity-tag comparisons and the three HTTP-date forms.
#include <criterion/criterion.h>

#include <ctime>
#include <string>
#include <vector>

#include "duet/http/http_conditional.hpp"
#include "duet/http/http_response.hpp"

using duet::CondHeaders;
using duet::CondMethod;
using duet::CondOutcome;
using duet::CondState;

namespace {

const std::string kTag = "\"aaaa\"";
const std::int64_t kMtime = 784111777;  // Sun, 06 Nov 1994 08:49:37 GMT
const char* kOlder = "Sat, 05 Nov 1994 08:49:37 GMT";
const char* kSame = "Sun, 06 Nov 1994 08:49:37 GMT";

const char* name_of(CondOutcome o) {
    switch (o) {
        case CondOutcome::Proceed:
            return "proceed";
        case CondOutcome::NotModified:
            return "304";
        case CondOutcome::PreconditionFailed:
            return "412";
    }
    return "?";
}

struct Case {
    const char* header;  // which field
    const char* value;
    bool exists;
    CondOutcome get, put;  // GET/HEAD, PUT/DELETE
};

CondHeaders headers(const char* h, const char* v) {
    CondHeaders c;
    std::string n = h;
    if (n == "If-Match") c.has_if_match = true, c.if_match = v;
    if (n == "If-None-Match") c.has_if_none_match = true, c.if_none_match = v;
    if (n == "If-Modified-Since") c.has_if_modified_since = true, c.if_modified_since = v;
    if (n == "If-Unmodified-Since") c.has_if_unmodified_since = true, c.if_unmodified_since = v;
    return c;
}

}  // namespace

Test(http_conditional, every_header_every_method_exists_and_missing) {
    using O = CondOutcome;
    const Case cases[] = {
        // If-Match: strong comparison, "*" = exists; false -> 412 for every method.
        {"If-Match", "\"aaaa\"", true, O::Proceed, O::Proceed},
        {"If-Match", "\"bbbb\", \"aaaa\"", true, O::Proceed, O::Proceed},
        {"If-Match", "\"bbbb\"", true, O::PreconditionFailed, O::PreconditionFailed},
        {"If-Match", "W/\"aaaa\"", true, O::PreconditionFailed, O::PreconditionFailed},
        {"If-Match", "*", true, O::Proceed, O::Proceed},
        {"If-Match", "*", false, O::PreconditionFailed, O::PreconditionFailed},
        {"If-Match", "\"aaaa\"", false, O::PreconditionFailed, O::PreconditionFailed},
        // If-None-Match: weak comparison; false -> 304 on GET/HEAD, 412 otherwise.
        {"If-None-Match", "\"aaaa\"", true, O::NotModified, O::PreconditionFailed},
        {"If-None-Match", "W/\"aaaa\"", true, O::NotModified, O::PreconditionFailed},
        {"If-None-Match", "\"bbbb\"", true, O::Proceed, O::Proceed},
        {"If-None-Match", "*", true, O::NotModified, O::PreconditionFailed},
        {"If-None-Match", "*", false, O::Proceed, O::Proceed},
        {"If-None-Match", "\"aaaa\"", false, O::Proceed, O::Proceed},
        // If-Unmodified-Since: modified after the date -> 412.
        {"If-Unmodified-Since", kOlder, true, O::PreconditionFailed, O::PreconditionFailed},
        {"If-Unmodified-Since", kSame, true, O::Proceed, O::Proceed},
        {"If-Unmodified-Since", "not a date", true, O::Proceed, O::Proceed},
        {"If-Unmodified-Since", kOlder, false, O::Proceed, O::Proceed},
        // If-Modified-Since: GET/HEAD only; not modified since -> 304.
        {"If-Modified-Since", kSame, true, O::NotModified, O::Proceed},
        {"If-Modified-Since", kOlder, true, O::Proceed, O::Proceed},
        {"If-Modified-Since", "garbage", true, O::Proceed, O::Proceed},
        {"If-Modified-Since", kSame, false, O::Proceed, O::Proceed},
    };
    for (const Case& c : cases) {
        CondState s{c.exists, kTag, kMtime};
        CondHeaders h = headers(c.header, c.value);
        for (CondMethod m :
             {CondMethod::Get, CondMethod::Head, CondMethod::Put, CondMethod::Delete}) {
            bool read = m == CondMethod::Get || m == CondMethod::Head;
            CondOutcome want = read ? c.get : c.put;
            CondOutcome got = duet::evaluate_conditions(m, h, s);
            cr_expect(got == want, "%s: %s, %s, method %d: got %s, want %s", c.header, c.value,
                      c.exists ? "exists" : "missing", int(m), name_of(got), name_of(want));
        }
    }
}

Test(http_conditional, order_of_evaluation) {
    CondState s{true, kTag, kMtime};
    // If-Match wins over If-Unmodified-Since: a true If-Match ignores a false IUS.
    CondHeaders h = headers("If-Match", "\"aaaa\"");
    h.has_if_unmodified_since = true;
    h.if_unmodified_since = kOlder;
    cr_expect(duet::evaluate_conditions(CondMethod::Put, h, s) == CondOutcome::Proceed);
    // If-None-Match wins over If-Modified-Since: a true INM ignores an unmodified IMS.
    CondHeaders g = headers("If-None-Match", "\"bbbb\"");
    g.has_if_modified_since = true;
    g.if_modified_since = kSame;
    cr_expect(duet::evaluate_conditions(CondMethod::Get, g, s) == CondOutcome::Proceed);
    // A false If-Match is 412 even when If-None-Match would be 304.
    CondHeaders b = headers("If-Match", "\"bbbb\"");
    b.has_if_none_match = true;
    b.if_none_match = "\"aaaa\"";
    cr_expect(duet::evaluate_conditions(CondMethod::Get, b, s) == CondOutcome::PreconditionFailed);
    // No headers: proceed.
    cr_expect(duet::evaluate_conditions(CondMethod::Put, CondHeaders{}, s) == CondOutcome::Proceed);
}

Test(http_conditional, three_date_forms) {
    std::int64_t t = 0;
    cr_assert(duet::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT", t));
    cr_expect_eq(t, kMtime);
    cr_assert(duet::parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", t));
    cr_expect_eq(t, kMtime);
    cr_assert(duet::parse_http_date("Sun Nov  6 08:49:37 1994", t));
    cr_expect_eq(t, kMtime);
    cr_assert(duet::parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT", t));
    cr_expect_eq(t, 0);
    cr_assert(duet::parse_http_date("Tue, 29 Feb 2028 23:59:59 GMT", t));
    cr_expect_eq(t, 1835481599);
    const char* bad[] = {"",
                         "yesterday",
                         "Sun, 06 Nov 1994 08:49:37 UTC",
                         "Sun, 06 Foo 1994 08:49:37 GMT",
                         "Sun, 06 Nov 1994 25:49:37 GMT",
                         "Sun, 6 Nov 1994 08:49:37 GMT"};
    for (const char* b : bad) cr_expect_not(duet::parse_http_date(b, t), "'%s'", b);
}

// http_date is pure arithmetic; gmtime_r + strftime in the C locale is the oracle. The sample
// covers leap days (2000 is a leap year, 2100 is not), month and year ends, and one day in
// every 97 for ~300 years.
Test(http_conditional, http_date_matches_gmtime) {
    std::vector<std::int64_t> times = {0,          1,          86399,       86400,
                                       784111777,  951782400,  951868799,   951868800,
                                       1835481599, 1835481600, 4107542399,  4107542400,
                                       4107628800, 2147483647, 253402300799};
    for (std::int64_t t = 0; t < 253402300799; t += 97 * 86400 + 3601) times.push_back(t);
    for (std::int64_t t : times) {
        std::time_t tt = static_cast<std::time_t>(t);
        std::tm tm{};
        gmtime_r(&tt, &tm);
        char want[64];
        std::strftime(want, sizeof want, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        std::string got = duet::http_date(t);
        cr_assert_str_eq(got.c_str(), want, "t=%lld", static_cast<long long>(t));
        std::int64_t back = -1;
        cr_assert(duet::parse_http_date(got, back));
        cr_assert_eq(back, t);
    }
}
