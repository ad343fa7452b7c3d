#pragma once
// The page (README "The page"): what a browser gets for `/` and a folder URL, its embedded
// assets, and the types stored files are served with. Pure functions; the routes that use them
// are in http_page.cpp.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace duet {

// ---- content negotiation (page_negotiate.cpp) ----
// Whether an Accept field prefers text/html to application/json (RFC 9110 §12.5.1: the most
// specific range that matches gives each its weight). A browser's navigation does; curl's "*/*",
// no Accept at all, or a tie get JSON as before.
bool prefers_html(std::string_view accept);
// Whether an Accept-Encoding field takes gzip (named or "*", with a weight above 0).
bool accepts_gzip(std::string_view accept_encoding);

// ---- types of stored files (media_types.cpp) ----
struct MediaType {
    std::string_view type;
    bool attachment;  // a type a browser would run (HTML, SVG, XML, ...): sent as a download
};
// From the name's extension, by a small table; anything unknown or active is
// application/octet-stream as an attachment.
MediaType stored_media_type(std::string_view name);
// "attachment; filename=\"NAME\"; filename*=UTF-8''NAME": a quoted name without '"', '\' or
// non-ASCII bytes, and the exact one in RFC 8187 form.
std::string attachment_disposition(std::string_view filename);

// ---- the page's HTML (page_html.cpp) ----
struct PageEntry {
    std::string name;  // relative to the folder
    bool dir = false;
    std::uint64_t size = 0;
    std::int64_t mtime = 0;  // unix seconds
    std::string sha256;      // hex, or "" when unknown
};
struct PageInput {
    std::string folder;  // "" the top, else "a/b" (decoded)
    std::vector<PageEntry> entries;
    std::uint64_t total = 0;    // entries in the folder (more than `entries` when cut)
    bool token_needed = false;  // --token and the browser's navigation carried none
};
std::string render_page(const PageInput& in);

// ---- embedded assets (page_assets.cpp) ----
struct Asset {
    std::string_view name;  // "app.js"
    std::string_view type;  // "text/javascript; charset=utf-8"
    std::string_view raw, gz;
    std::string_view etag;  // "\"16 hex digits\"", of the raw bytes
};
const Asset* find_asset(std::string_view name);
std::span<const Asset> assets();

}  // namespace duet
