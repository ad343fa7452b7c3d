// CORS (README "HTTP API"): with --cors, pages from the allowed origins may use the API from a
// browser, tus uploaders included. Without --cors no CORS field is ever sent.
#include "duet/http/http_conn.hpp"

namespace duet {
namespace {
// Every response field a browser script needs to read (the README's list).
constexpr std::string_view kExpose =
    "Access-Control-Expose-Headers: Location, ETag, Repr-Digest, Upload-Offset, Upload-Length, "
    "Upload-Complete, Upload-Limit, Upload-Draft-Interop-Version, Tus-Resumable, Tus-Version, "
    "Tus-Extension, Tus-Max-Size, Upload-Expires\r\n";
constexpr std::string_view kPreflight =
    "Access-Control-Allow-Methods: GET, HEAD, PUT, POST, PATCH, DELETE, OPTIONS\r\n"
    "Access-Control-Allow-Headers: Authorization, Content-Type, Upload-Offset, Upload-Length, "
    "Upload-Complete, Upload-Draft-Interop-Version, Upload-Metadata, Upload-Checksum, "
    "Upload-Defer-Length, Upload-Concat, Tus-Resumable, X-HTTP-Method-Override, X-Request-ID, "
    "If-Match, If-None-Match, Repr-Digest, Content-Digest\r\n"
    "Access-Control-Max-Age: 86400\r\n";
}  // namespace

bool HttpConn::cors_match(const Request& req) {
    const Header* origin = req.find("origin");
    if (!origin) return false;
    const auto& allowed = host().cfg.cors;
    for (std::size_t i = 0; i < allowed.size() && i < 255; ++i) {
        if (allowed[i] == "*" || allowed[i] == origin->value) {
            ex_.cors = static_cast<std::uint8_t>(i + 1);
            return true;
        }
    }
    return false;
}

// A preflight needs no token: the browser sends it without the Authorization field.
bool HttpConn::cors_preflight(const Request& req) {
    if (req.method != "OPTIONS" || !req.find("access-control-request-method")) return false;
    ResponseHead head(204, host().date_header());
    head.raw(kPreflight);
    send(head, {});
    return true;
}

void HttpConn::cors_fields(ResponseHead& head) const {
    head.header("Access-Control-Allow-Origin", host().cfg.cors[ex_.cors - 1]);
    head.raw("Vary: Origin\r\n");
    head.raw(kExpose);
}

}  // namespace duet
