#pragma once
// The route table (README "HTTP API"): every path the HTTP port serves and the methods each takes.
// The router reads it, and the README test checks that every row is documented.
#include <span>
#include <string_view>

namespace duet {

struct RouteSpec {
    std::string_view path;   // "/files/" with prefix: every "/files/NAME"
    bool prefix;             // path is a prefix rather than the whole path
    std::string_view allow;  // the whole "Allow: ..." field line sent with 405 and OPTIONS
    std::string_view placeholder = "NAME";  // what the README writes after a prefix path
};

std::span<const RouteSpec> route_table();

// True when the Allow field line `allow` lists `method`.
bool allow_lists(std::string_view allow, std::string_view method);

}  // namespace duet
