// The page's HTML (README "The page"): a folder's listing rendered by duet, so that it can be
// browsed and every file downloaded with scripts off; app.js then takes the table over.
#include <algorithm>
#include <ctime>

#include "duet/http/page.hpp"
#include "duet/store/names.hpp"

namespace duet {
namespace {

void put_html(std::string& out, std::string_view s) {
    for (char c : s) {
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            case '\'':
                out += "&#39;";
                break;
            default:
                out += c;
        }
    }
}

// "1.2 KiB": what a person reads; the exact count is in the row's data-size.
std::string human_size(std::uint64_t n) {
    static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    if (n < 1024) return std::to_string(n) + " B";
    double v = double(n);
    int u = 0;
    while (v >= 1024 && u < 5) v /= 1024, ++u;
    char buf[32];
    std::snprintf(buf, sizeof buf, v < 10 ? "%.1f %s" : "%.0f %s", v, kUnits[u]);
    return buf;
}

// <time datetime="2026-12-06T10:00:00Z">2026-12-06 10:00 UTC</time>: the script shows local time.
void put_time(std::string& out, std::int64_t t) {
    std::time_t tt = std::time_t(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char iso[32], shown[32];
    std::strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
    std::strftime(shown, sizeof shown, "%Y-%m-%d %H:%M UTC", &tm);
    out += "<time datetime=\"";
    out += iso;
    out += "\">";
    out += shown;
    out += "</time>";
}

// "/files/a/b/" with each segment percent-encoded.
std::string folder_href(std::string_view folder) {
    return folder.empty() ? std::string("/files/") : "/files/" + url_encode(folder) + "/";
}

void put_row(std::string& out, const std::string& href_base, const PageEntry& e) {
    out += "<tr data-name=\"";
    put_html(out, e.name);
    out += e.dir ? "\" data-type=\"dir\"" : "\" data-type=\"file\"";
    if (!e.dir) out += " data-size=\"" + std::to_string(e.size) + "\"";
    out += " data-mtime=\"" + std::to_string(e.mtime) + "\"";
    if (!e.sha256.empty()) out += " data-sha256=\"" + e.sha256 + "\"";
    out += "><td class=\"name\"><a href=\"";
    put_html(out, href_base + url_encode(e.name) + (e.dir ? "/" : ""));
    out += "\">";
    put_html(out, e.name);
    if (e.dir) out += '/';
    out += "</a></td><td class=\"size\">";
    out += e.dir ? "—" : human_size(e.size);
    out += "</td><td class=\"mtime\">";
    put_time(out, e.mtime);
    out += "</td><td class=\"sha\">";
    if (!e.sha256.empty()) {
        out += "<code title=\"" + e.sha256 + "\">";
        out += std::string_view(e.sha256).substr(0, 12);
        out += "…</code>";
    }
    out += "</td></tr>\n";
}

}  // namespace

std::string render_page(const PageInput& in) {
    const Asset* css = find_asset("app.css");
    const Asset* worker = find_asset("hash_worker.js");
    // The asset's ETag (without quotes) in its URL: a new build's assets are new URLs, so they
    // can be cached for a year.
    auto url = [](const Asset* a) {
        return "/assets/" + std::string(a->name) +
               "?v=" + std::string(a->etag.substr(1, a->etag.size() - 2));
    };
    std::string shown = "/" + in.folder + (in.folder.empty() ? "" : "/");
    std::string out;
    out.reserve(2048 + in.entries.size() * 512);  // a row with its digest: about 470 bytes
    out +=
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n"
        "<meta name=\"color-scheme\" content=\"light dark\">\n<title>";
    put_html(out, shown);
    // An empty icon: no /favicon.ico request (a 404) from the browser.
    out +=
        " · duet</title>\n<link rel=\"icon\" href=\"data:,\">\n<link rel=\"stylesheet\" href=\"" +
        url(css) + "\">\n";
    // The page's scripts, in the order they run (deferred scripts keep it); they share their
    // top-level names.
    for (const char* js : {"common.js", "listing.js", "uploads.js", "app.js"})
        out += "<script src=\"" + url(find_asset(js)) + "\" defer></script>\n";
    out += "</head>\n";
    out += "<body data-path=\"";
    put_html(out, in.folder.empty() ? std::string() : in.folder + "/");
    out += "\" data-worker=\"" + url(worker) + "\" data-auth=\"";
    out += in.token_needed ? "needed" : "ok";
    out += "\">\n<a class=\"skip\" href=\"#listing\">Skip to the listing</a>\n<header>\n";
    // The page's heading for screen readers; the breadcrumbs show the same path.
    out += "<h1 class=\"visually-hidden\">Files in ";
    put_html(out, shown);
    out += "</h1>\n";
    // Breadcrumbs: the top folder, then each folder on the way.
    out += "<nav aria-label=\"Folder path\"><ol id=\"crumbs\"><li><a href=\"/files/\"";
    if (in.folder.empty()) out += " aria-current=\"page\"";
    out += ">files</a></li>";
    for (std::size_t at = 0; at < in.folder.size();) {
        std::size_t slash = in.folder.find('/', at);
        std::size_t end = slash == std::string::npos ? in.folder.size() : slash;
        out += "<li><a href=\"";
        put_html(out, folder_href(std::string_view(in.folder).substr(0, end)));
        out += "\"";
        if (end == in.folder.size()) out += " aria-current=\"page\"";
        out += ">";
        put_html(out, std::string_view(in.folder).substr(at, end - at));
        out += "</a></li>";
        at = end + 1;
    }
    out += "</ol></nav>\n";
    std::string base = folder_href(in.folder);
    out += "<p class=\"folder-actions\"><a id=\"tar-link\" href=\"";
    put_html(out, base + "?archive=tar");
    out += "\">Download this folder as tar</a></p>\n</header>\n<main>\n<div id=\"app\"></div>\n";
    out += "<p id=\"status\" role=\"status\" aria-live=\"polite\"></p>\n";
    if (in.token_needed)
        out +=
            "<p id=\"auth-needed\">This server needs a token to show its files. With scripts on, "
            "the page asks for it.</p>\n";
    out += "<table id=\"listing\">\n<caption>Contents of ";
    put_html(out, shown);
    out +=
        "</caption>\n<thead><tr><th scope=\"col\" data-key=\"name\">Name</th>"
        "<th scope=\"col\" data-key=\"size\">Size</th><th scope=\"col\" "
        "data-key=\"mtime\">Modified</th><th scope=\"col\" data-key=\"sha256\">SHA-256</th>"
        "</tr></thead>\n<tbody>\n";
    for (const PageEntry& e : in.entries) put_row(out, base, e);
    out += "</tbody>\n</table>\n";
    if (std::uint64_t more = in.total - std::min<std::uint64_t>(in.total, in.entries.size()))
        out += "<p id=\"more\">" + std::to_string(more) +
               (more == 1 ? " more entry is" : " more entries are") +
               " not shown here; with scripts on, the page lists them all.</p>\n";
    out += "</main>\n</body>\n</html>\n";
    return out;
}

}  // namespace duet
