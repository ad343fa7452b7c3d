#pragma once
// Conditional requests (RFC 9110 §13) as one pure function: the precondition headers of a request
// and the current state of the target in, the outcome out. No I/O; the routes call it before any
// body is read, and the store re-checks what it decided at the moment of publish.
#include <cstdint>
#include <string_view>

namespace duet {

enum class CondMethod : std::uint8_t { Get, Head, Put, Delete, Other };

struct CondHeaders {
    // Each is the (combined) field value, or absent when `has_*` is false.
    bool has_if_match = false, has_if_none_match = false;
    bool has_if_modified_since = false, has_if_unmodified_since = false;
    std::string_view if_match, if_none_match, if_modified_since, if_unmodified_since;
    bool any() const {
        return has_if_match || has_if_none_match || has_if_modified_since ||
               has_if_unmodified_since;
    }
};

struct CondState {
    bool exists = false;
    std::string_view etag;   // the strong entity tag, quoted: "\"hex\""
    std::int64_t mtime = 0;  // Last-Modified, unix seconds
};

enum class CondOutcome : std::uint8_t {
    Proceed,            // perform the method
    NotModified,        // 304 (GET/HEAD only)
    PreconditionFailed  // 412
};

// RFC 9110 §13.2.2, in its order: If-Match, else If-Unmodified-Since; then If-None-Match, else
// If-Modified-Since (GET/HEAD only). If-Range is the range code's business (step 5).
CondOutcome evaluate_conditions(CondMethod m, const CondHeaders& h, const CondState& s);

// If-Match: "*" is true when the target exists; otherwise a list of entity tags compared
// strongly (a weak tag never matches). False when the target does not exist.
bool if_match_true(std::string_view value, const CondState& s);
// If-None-Match: false when "*" and the target exists, or when a listed tag matches weakly.
bool if_none_match_true(std::string_view value, const CondState& s);

// An HTTP-date (RFC 9110 §5.6.7) in any of its three forms (IMF-fixdate, RFC 850, asctime) to
// unix seconds. false when the value is not a valid date (the header is then ignored).
bool parse_http_date(std::string_view value, std::int64_t& out);

}  // namespace duet
