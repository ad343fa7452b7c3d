// The route table: which path and method go where, and the small built-in routes.
#include <cstdio>
#include <ctime>

#include "duet/http_conn.hpp"
#include "duet/server.hpp"

namespace duet {
namespace {

enum class Route { Root, Health, Metrics, FilesList, File, Asterisk, Unknown };

Route find_route(std::string_view path) {
    if (path == "/") return Route::Root;
    if (path == "/healthz") return Route::Health;
    if (path == "/metrics") return Route::Metrics;
    if (path == "/files") return Route::FilesList;
    if (path.substr(0, 7) == "/files/") return Route::File;
    if (path == "*") return Route::Asterisk;
    return Route::Unknown;
}

// The whole Allow field line of a route.
std::string_view allow_field(Route r) {
    switch (r) {
        case Route::Root:
        case Route::Health:
        case Route::FilesList:
            return "Allow: GET, HEAD, OPTIONS\r\n";
        case Route::Metrics:
            return "Allow: GET, OPTIONS\r\n";
        default:
            return "Allow: GET, HEAD, PUT, DELETE, OPTIONS\r\n";
    }
}

bool method_allowed(Route r, std::string_view m) {
    if (m == "OPTIONS") return true;
    switch (r) {
        case Route::Root:
        case Route::Health:
        case Route::FilesList:
            return m == "GET" || m == "HEAD";
        case Route::Metrics:
            return m == "GET";
        case Route::File:
            return m == "GET" || m == "HEAD" || m == "PUT" || m == "DELETE";
        default:
            return false;
    }
}

// Methods defined by RFC 9110 and RFC 5789; anything else is "not implemented" (501).
bool known_method(std::string_view m) {
    static const std::string_view known[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                             "CONNECT", "OPTIONS", "TRACE", "PATCH"};
    for (auto k : known)
        if (m == k) return true;
    return false;
}

}  // namespace

void HttpConn::route(const Request& req) {
    if (!known_method(req.method)) {
        respond_error(501, "This method is not implemented.");
        return;
    }
    Route r = find_route(req.path);
    if (r == Route::Unknown || (r == Route::Asterisk && req.method != "OPTIONS")) {
        respond_error(404, "There is nothing at this path.");
        return;
    }
    std::string_view allow = allow_field(r);
    if (!method_allowed(r, req.method)) {
        respond_error(405, "This method is not allowed here.", allow);
        return;
    }
    bool files = r == Route::FilesList || r == Route::File;
    if (files && !authorized(req)) {
        respond_error(401, "A valid bearer token is required.", "WWW-Authenticate: Bearer\r\n");
        return;
    }
    if (req.method == "OPTIONS") {
        respond(204, {}, {}, allow);
        return;
    }
    switch (r) {
        case Route::Root:
            respond(200, "application/json", srv_.root_body());
            return;
        case Route::Health:
            if (srv_.draining())
                respond(503, "text/plain", "draining\n");
            else
                respond(200, "text/plain", "ok\n");
            return;
        case Route::Metrics: {
            timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            double now = double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
            MetricsContext ctx{now - srv_.started_at,   srv_.generation,         srv_.reloads,
                               srv_.store.file_count(), srv_.store.byte_count(), srv_.draining()};
            send_long_typed(200, "text/plain; version=0.0.4", render_metrics(srv_.metrics, ctx));
            return;
        }
        case Route::FilesList:
            route_files_list(req);
            return;
        case Route::File:
            route_file(req, req.path.substr(7));
            return;
        default:
            respond_error(404, "There is nothing at this path.");
            return;
    }
}

void HttpConn::send_long_typed(int status, std::string_view content_type, std::string body) {
    ResponseHead head(status, srv_.date_header());
    head.header("Content-Type", content_type);
    send_long(head, std::move(body));
}

}  // namespace duet
