// Unit tests of the page's pure parts (README "The page"): content negotiation, the types of
// stored files, the page's HTML, and the change feed behind GET /events.
#include <criterion/criterion.h>

#include <string>

#include "duet/http/page.hpp"
#include "duet/store/change_feed.hpp"

using namespace duet;

Test(page, a_browser_prefers_html_and_curl_does_not) {
    cr_assert(prefers_html("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"));
    cr_assert(prefers_html("text/html"));
    cr_assert(prefers_html("text/*;q=0.9, application/json;q=0.5"));
    cr_assert(prefers_html("TEXT/HTML ; Q=1"));
    cr_assert_not(prefers_html(""));
    cr_assert_not(prefers_html("*/*"));
    cr_assert_not(prefers_html("application/json"));
    cr_assert_not(prefers_html("text/html, application/json"), "a tie keeps JSON");
    cr_assert_not(prefers_html("text/html;q=0, */*"));
    cr_assert_not(prefers_html("text/html;q=0.5, application/json"));
    cr_assert_not(prefers_html("text/html;q=bogus"));
}

Test(page, gzip_is_sent_only_when_taken) {
    cr_assert(accepts_gzip("gzip, deflate, br"));
    cr_assert(accepts_gzip("br;q=1, GZIP;q=0.5"));
    cr_assert(accepts_gzip("*"));
    cr_assert_not(accepts_gzip("gzip;q=0"));
    cr_assert_not(accepts_gzip("gzip;q=0, *"));
    cr_assert_not(accepts_gzip("br, deflate"));
    cr_assert_not(accepts_gzip("identity"));
}

Test(page, stored_files_get_safe_types) {
    cr_assert(stored_media_type("a/b.png").type == "image/png");
    cr_assert_not(stored_media_type("a.JPG").attachment);
    for (const char* active : {"x.html", "x.htm", "x.xhtml", "x.svg", "x.xml", "x.js", "x.mjs",
                               "x.css", "x.wasm", "x", "x.", ".html", "a.html/b", "x.shtml"}) {
        MediaType t = stored_media_type(active);
        cr_assert(t.type == "application/octet-stream", "%s", active);
        cr_assert(t.attachment, "%s", active);
    }
    cr_assert_eq(attachment_disposition("a \"b\".txt"),
                 "attachment; filename=\"a _b_.txt\"; filename*=UTF-8''a%20%22b%22.txt");
}

Test(page, the_page_escapes_what_it_shows) {
    PageInput in;
    in.folder = "a&b/<c>";
    PageEntry e;
    e.name = "\"x'<y>.txt";
    e.size = 1536;
    e.mtime = 0;
    e.sha256 = std::string(64, 'a');
    in.entries.push_back(e);
    PageEntry d;
    d.name = "sub";
    d.dir = true;
    in.entries.push_back(d);
    in.total = 2;
    std::string html = render_page(in);
    cr_assert(html.find("data-name=\"&quot;x&#39;&lt;y&gt;.txt\"") != std::string::npos, "%s",
              html.c_str());
    cr_assert(
        html.find("href=\"/files/a&amp;b/%3Cc%3E/%22x&#39;%3Cy%3E.txt\"") != std::string::npos,
        "%s", html.c_str());
    cr_assert(html.find("<title>/a&amp;b/&lt;c&gt;/ · duet</title>") != std::string::npos);
    cr_assert(html.find("1.5 KiB") != std::string::npos);
    cr_assert(html.find("1970-01-01 00:00 UTC") != std::string::npos);
    cr_assert(html.find("href=\"/files/a&amp;b/%3Cc%3E/sub/\">sub/</a>") != std::string::npos);
    cr_assert(html.find("aria-current=\"page\">&lt;c&gt;</a>") != std::string::npos, "crumbs");
    cr_assert(html.find("<script>") == std::string::npos);
    cr_assert(html.find("\"x'<") == std::string::npos, "nothing raw");
    cr_assert(html.find("id=\"more\"") == std::string::npos, "all shown");
    // A folder with more entries than the page carries says how many more.
    in.total = 3;
    cr_assert(render_page(in).find(">1 more entry is not shown here;") != std::string::npos);
    in.total = 1002;
    cr_assert(render_page(in).find(">1000 more entries are not shown here;") != std::string::npos);
    in.total = 2;
    // With a token needed, no name from the store.
    in.token_needed = true;
    in.entries.clear();
    html = render_page(in);
    cr_assert(html.find("data-auth=\"needed\"") != std::string::npos);
    cr_assert(html.find("x.txt") == std::string::npos);
}

namespace {
struct Reader final : ChangeFeed::Listener {
    int changes = 0, keepalives = 0;
    void on_change() override { ++changes; }
    void on_keepalive() override { ++keepalives; }
};
}  // namespace

Test(page, the_feed_tells_each_folder_its_own_changes) {
    ChangeFeed feed(1000);
    Reader top, sub;
    sub.folder = "a";
    feed.subscribe(&top);
    feed.subscribe(&sub);
    std::uint64_t start = feed.last_id();
    cr_assert_eq(start, 999u);
    feed.add(ChangeFeed::Kind::Created, "x.txt", {}, "{\"name\":\"x.txt\"}");
    feed.add(ChangeFeed::Kind::Deleted, "a/y.txt", {}, "{\"name\":\"a/y.txt\"}");
    feed.add(ChangeFeed::Kind::Moved, "a/z", "z", "{\"from\":\"a/z\",\"to\":\"z\"}");
    cr_assert_eq(top.changes, 2);  // x.txt, and the move into the top folder
    cr_assert_eq(sub.changes, 2);  // y.txt, and the move out of a
    std::string out;
    std::uint64_t at = feed.read(start, "a", out, 1 << 20);
    cr_assert_eq(at, 1002u);
    cr_assert_eq(out,
                 "id: 1001\nevent: deleted\ndata: {\"name\":\"a/y.txt\"}\n\n"
                 "id: 1002\nevent: moved\ndata: {\"from\":\"a/z\",\"to\":\"z\"}\n\n");
    out.clear();
    cr_assert_eq(feed.read(at, "a", out, 1 << 20), 1002u);
    cr_assert(out.empty());
    // An id from before this feed, or from after it: a reset.
    cr_assert_eq(feed.read(5, "a", out, 1 << 20), 1002u);
    cr_assert_eq(out, "id: 1002\nevent: reset\ndata: {}\n\n");
    out.clear();
    feed.read(5000, "", out, 1 << 20);
    cr_assert(out.find("event: reset") != std::string::npos);
    // Reads stop near `max`, and go on from where they stopped.
    out.clear();
    at = feed.read(start, "", out, 1);
    cr_assert_eq(at, 1000u);
    feed.keepalive();
    cr_assert_eq(top.keepalives, 1);
    feed.unsubscribe(&top);
    feed.unsubscribe(&sub);
}

Test(page, the_feed_forgets_the_oldest_and_says_so) {
    ChangeFeed feed(1);
    for (std::size_t i = 0; i < ChangeFeed::kKept + 10; ++i)
        feed.add(ChangeFeed::Kind::Created, "f", {}, "{}");
    std::string out;
    feed.read(3, "", out, 1 << 30);
    cr_assert_eq(out.find("event: reset"), 9u, "%s", out.substr(0, 80).c_str());
    out.clear();
    feed.read(10, "", out, 1 << 30);  // the first one still kept is 11
    cr_assert(out.find("reset") == std::string::npos);
    cr_assert_eq(out.find("id: 11\n"), 0u);
    feed.reset();
    out.clear();
    feed.read(feed.last_id() - 1, "any/folder", out, 1 << 30);
    cr_assert(out.find("event: reset") != std::string::npos, "a reset concerns every folder");
}
