// The page over HTTP (README "The page"): the folder page a browser gets for `/` and a folder
// URL, and the embedded assets it loads.
#include <algorithm>
#include <cstdio>

#include "duet/http/http_conn.hpp"
#include "duet/http/http_fields.hpp"
#include "duet/http/page.hpp"
#include "duet/session/store_errors.hpp"

namespace duet {
namespace {

// The page runs only its own script and talks only to duet (README "The page").
constexpr std::string_view kPageFields =
    "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self' data:; worker-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'\r\n"
    "Referrer-Policy: no-referrer\r\n"
    "Cache-Control: no-store\r\n";

// A folder with more entries than this has its page made on a helper: the loop would take about
// 25 ms for 5,000 rows (2.3 MB of HTML), a step everyone else waits for. A smaller one is made at
// once, quicker than a helper's round trip.
constexpr std::size_t kRenderOnLoop = 500;

}  // namespace

bool HttpConn::wants_page(const Request& req) const {
    if (req.method != "GET" && req.method != "HEAD") return false;
    const Header* accept = req.find("accept");
    return accept && prefers_html(accept->value);
}

void HttpConn::route_page(const Request& req, std::string_view raw_folder) {
    std::string folder;
    bool is_folder = true;
    if (!raw_folder.empty()) {
        std::string why = decode_path(raw_folder, folder, is_folder);
        if (!why.empty()) return respond_error(400, why);
    }
    if (!host().store.usable()) {
        store_trouble(kStoreGone);
        return;
    }
    // This request's page, made on a helper (below): sent once it is there.
    if (StoreOpRef op = host().take_store_op(this, StoreOp::Kind::Render)) {
        if (!op->done) return host().wait_store_op(this, std::move(op));
        return send_page(std::move(op->text));
    }
    PageInput in;
    in.folder = folder;
    // A browser's navigation carries no token: the page comes without the listing, and its
    // script asks for the token (README "The page").
    if (!host().cfg.token.empty()) {
        const Header* h = req.find("authorization");
        in.token_needed = !(h && bearer_matches(h->value, host().cfg.token));
    }
    StoreIndex& index = host().index;
    if (!in.token_needed) {
        if (!index.holds_folder(folder)) {
            if (!index.built()) {
                store_trouble(-EINPROGRESS);
                return;
            }
            ex_.vary_accept = true;
            return respond_error(404, "No folder has this name.");
        }
        // The page shows up to this many entries itself; its script lists the rest.
        constexpr std::size_t kPageEntries = 5000;
        auto listed = index.folder_entries(folder, kPageEntries);
        in.entries.reserve(listed.size());
        for (auto& [name, e] : listed) {
            PageEntry p;
            p.name = std::move(name);
            p.dir = e.dir;
            p.size = e.size;
            p.mtime = e.mtime_ns / 1000000000;
            if (!e.dir && e.state == StoreIndex::State::Ready) p.sha256 = to_hex(e.sha256);
            in.entries.push_back(std::move(p));
        }
        in.total = std::max<std::uint64_t>(index.folder_count(folder), in.entries.size());
    }
    if (in.entries.size() <= kRenderOnLoop) return send_page(render_page(in));
    auto op = std::make_shared<StoreOp>();
    op->kind = StoreOp::Kind::Render;
    // The helper writes only op->text, which the loop reads once done is set (on the loop).
    auto input = std::make_shared<PageInput>(std::move(in));
    host().store.run_offloaded([op, input] { op->text = render_page(*input); },
                               [op] { op->done = true; });
    if (op->done) return send_page(std::move(op->text));  // no helpers (unit tests)
    host().wait_store_op(this, std::move(op));
}

void HttpConn::send_page(std::string html) {
    ex_.vary_accept = true;
    ResponseHead head(200, host().date_header());
    head.header("Content-Type", "text/html; charset=utf-8");
    head.raw(kPageFields);
    send_long(head, std::move(html));
}

void HttpConn::serve_asset(const Request& req, std::string_view name) {
    const Asset* a = find_asset(name);
    if (!a) return respond_error(404, "There is nothing at this path.");
    const Header* ae = req.find("accept-encoding");
    bool gz = ae && accepts_gzip(ae->value);
    ResponseHead head(200, host().date_header());
    // Each build's assets have URLs of their own (?v=ETAG), so a year of caching is safe.
    std::string fields = "Cache-Control: public, max-age=31536000, immutable\r\nETag: ";
    fields += a->etag;
    fields += "\r\nVary: Accept-Encoding\r\n";
    const Header* inm = req.find("if-none-match");
    if (inm && etag_list_matches(inm->value, a->etag)) {
        ResponseHead nm(304, host().date_header());
        nm.raw(fields);
        send(nm, {});
        return;
    }
    head.header("Content-Type", a->type);
    head.raw(fields);
    if (gz) head.raw("Content-Encoding: gzip\r\n");
    std::string_view body = gz ? a->gz : a->raw;
    send_long(head, std::string(body));
}

}  // namespace duet
