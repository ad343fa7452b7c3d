// The route table: which path and method go where, and the small built-in routes.
#include "duet/http/http_routes.hpp"

#include <cstdio>
#include <ctime>
#include <iterator>

#include "duet/http/http_conn.hpp"
#include "duet/http/http_fields.hpp"

namespace duet {
namespace {

// In the order of kRoutes.
enum class Route {
    Root,
    Health,
    Metrics,
    FilesList,
    File,
    Uploads,
    Upload,
    Events,
    Assets,
    Asterisk,
    Unknown
};

constexpr RouteSpec kRoutes[] = {
    {"/", false, "Allow: GET, HEAD, OPTIONS\r\n"},
    {"/healthz", false, "Allow: GET, HEAD, OPTIONS\r\n"},
    {"/metrics", false, "Allow: GET, OPTIONS\r\n"},
    {"/files", false, "Allow: GET, HEAD, OPTIONS\r\n"},
    // POST only as a resumable upload creation (Upload-Complete; route_file checks).
    {"/files/", true, "Allow: GET, HEAD, PUT, POST, DELETE, MKCOL, MOVE, OPTIONS\r\n"},
    {"/uploads", false, "Allow: GET, HEAD, POST, OPTIONS\r\n"},
    {"/uploads/", true, "Allow: GET, HEAD, PATCH, DELETE, OPTIONS\r\n", "ID"},
    // The page (README "The page"): its change events and its embedded assets.
    {"/events", false, "Allow: GET, OPTIONS\r\n"},
    {"/assets/", true, "Allow: GET, HEAD, OPTIONS\r\n", "FILE"},
    // OPTIONS * asks about the server as a whole: every method some route takes.
    {"*", false, "Allow: GET, HEAD, PUT, POST, PATCH, DELETE, MKCOL, MOVE, OPTIONS\r\n"},
};
static_assert(std::size(kRoutes) == std::size_t(Route::Unknown));

Route find_route(std::string_view path) {
    for (std::size_t i = 0; i < std::size(kRoutes); ++i) {
        const RouteSpec& r = kRoutes[i];
        if (r.prefix ? path.substr(0, r.path.size()) == r.path : path == r.path) return Route(i);
    }
    return Route::Unknown;
}

std::string_view allow_field(Route r) {
    return r == Route::Unknown ? std::string_view{} : kRoutes[std::size_t(r)].allow;
}

bool method_allowed(Route r, std::string_view m) {
    if (m == "OPTIONS") return true;
    // OPTIONS is the only method "*" takes (RFC 9110 §9.3.7).
    if (r == Route::Asterisk || r == Route::Unknown) return false;
    return allow_lists(allow_field(r), m);
}

// Methods defined by RFC 9110 and RFC 5789; anything else is "not implemented" (501).
bool known_method(std::string_view m) {
    // And RFC 4918's MKCOL and MOVE (README "Folders").
    static const std::string_view known[] = {"GET",    "HEAD",    "POST",    "PUT",
                                             "DELETE", "CONNECT", "OPTIONS", "TRACE",
                                             "PATCH",  "MKCOL",   "MOVE"};
    for (auto k : known)
        if (m == k) return true;
    return false;
}

}  // namespace

std::span<const RouteSpec> route_table() {
    return kRoutes;
}

bool allow_lists(std::string_view allow, std::string_view method) {
    constexpr std::string_view kName = "Allow: ";
    if (allow.substr(0, kName.size()) == kName) allow.remove_prefix(kName.size());
    while (!allow.empty()) {
        std::size_t end = allow.find_first_of(",\r");
        std::string_view item = allow.substr(0, end);
        if (item == method) return true;
        if (end == std::string_view::npos || allow[end] == '\r') return false;
        allow.remove_prefix(end + 1);
        while (!allow.empty() && allow.front() == ' ') allow.remove_prefix(1);
    }
    return false;
}

bool HttpConn::needs_token(const Request& req) const {
    if (host().cfg.token.empty()) return false;
    std::string_view path = req.path;
    std::string normalized;
    if (path != "*" && has_dot_segment(path)) path = normalized = remove_dot_segments(path);
    Route r = find_route(path);
    return r == Route::FilesList || r == Route::File || r == Route::Uploads || r == Route::Upload ||
           r == Route::Events;
}

void HttpConn::route(const Request& req) {
    if (!known_method(req.method)) {
        respond_error(501, "This method is not implemented.");
        return;
    }
    // A CORS preflight is answered on any route, before the token (README "CORS").
    if (!host().cfg.cors.empty() && cors_match(req) && cors_preflight(req)) return;
    // RFC 3986 §5.2.4: "/files/../healthz" is "/healthz"; names are checked after this.
    std::string normalized;
    std::string_view path = req.path;
    if (path != "*" && has_dot_segment(path)) {
        normalized = remove_dot_segments(path);
        if (normalized.empty() || normalized[0] != '/') normalized.insert(0, 1, '/');
        path = normalized;
    }
    Route r = find_route(path);
    if (r == Route::Unknown || (r == Route::Asterisk && req.method != "OPTIONS")) {
        respond_error(404, "There is nothing at this path.");
        return;
    }
    std::string_view allow = allow_field(r);
    if (!method_allowed(r, req.method)) {
        respond_error(405, "This method is not allowed here.", allow);
        return;
    }
    // A browser's navigation to `/` or a folder gets the page, which asks for the token itself.
    if ((r == Route::Root || r == Route::FilesList ||
         (r == Route::File && path.back() == '/' &&
          req.target.find('?') == std::string_view::npos)) &&
        wants_page(req))
        return route_page(req, r == Route::File ? path.substr(7) : std::string_view());
    bool files = r == Route::FilesList || r == Route::File || r == Route::Uploads ||
                 r == Route::Upload || r == Route::Events;
    if (files && !host().cfg.token.empty()) {
        const Header* h = req.find("authorization");
        bool ok = h && bearer_matches(h->value, host().cfg.token);
        // Only a request that offers a token is an attempt; too many wrong ones close.
        if (h && auth_result(ok)) ex_.keep_alive = false;
        if (!ok) {
            respond_error(401, "A valid bearer token is required.", "WWW-Authenticate: Bearer\r\n");
            return;
        }
    }
    if (req.method == "OPTIONS") {
        if (r == Route::Uploads || r == Route::Upload) return upload_options(req);
        if (r == Route::File) {  // the draft: OPTIONS on a target announces the upload limits
            respond(204, {}, {}, std::string(allow) + upload_limit_field(nullptr));
            return;
        }
        respond(204, {}, {}, allow);
        return;
    }
    switch (r) {
        case Route::Root:
            ex_.vary_accept = true;
            respond(200, "application/json", host().root_body());
            return;
        case Route::Health:
            // A reload is not a stop: the process serves through it, and a load balancer polling
            // this must not take duet out of service for it.
            if (host().stopping())
                respond(503, "text/plain", "stopping\n");
            else if (!host().store.usable())
                respond(503, "text/plain",
                        "store unavailable: " + host().store.gone_reason() + "\n");
            else
                respond(200, "text/plain", "ok\n");
            return;
        case Route::Metrics: {
            timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            double now = double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
            MetricsContext ctx{now - host().started_at, host().generation,    host().reloads,
                               host().index.files(),    host().index.bytes(), host().draining()};
            ctx.log_lines_dropped = host().log_lines_dropped();
            ctx.store_ok = !host().store.gone();
            ctx.index_pending = host().index.pending();
            ctx.store_skipped = host().index.skipped();
            send_long_typed(200, "text/plain; version=0.0.4", render_metrics(host().metrics, ctx));
            return;
        }
        case Route::FilesList:
            route_files_list(req);
            return;
        case Route::File:
            route_file(req, path.substr(7));
            return;
        case Route::Uploads:
            route_uploads(req, {});
            return;
        case Route::Upload:
            route_uploads(req, path.substr(9));
            return;
        case Route::Events:
            start_events(req);
            return;
        case Route::Assets:
            serve_asset(req, path.substr(8));
            return;
        default:
            respond_error(404, "There is nothing at this path.");
            return;
    }
}

void HttpConn::send_long_typed(int status, std::string_view content_type, std::string body) {
    ResponseHead head(status, host().date_header());
    head.header("Content-Type", content_type);
    send_long(head, std::move(body));
}

}  // namespace duet
