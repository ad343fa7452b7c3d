// Black-box tests of README "The page", the server's side: which clients get the page, its
// assets (gzip, ETags, caching), the types and sandbox of stored files, and the event stream
// (changes from every door, catch-up by Last-Event-ID, a reload, the token).
#include <criterion/criterion.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "helper.hpp"

namespace {

t::Duet& g_srv = t::served;
using t::request;

std::string http(const std::string& raw) {
    return t::http(g_srv.http_port, raw);
}
std::string get(const std::string& path, const std::string& fields = "") {
    return http(request("GET", path, fields));
}
std::string put(const std::string& path, const std::string& body, const std::string& fields = "") {
    return http(request("PUT", "/files/" + path,
                        "Content-Length: " + std::to_string(body.size()) + "\r\n" + fields, body));
}
constexpr const char* kBrowser =
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n";

// Reads from `fd` into `got` until it holds `needle` (true) or `ms` pass (false).
bool read_until(int fd, std::string& got, const std::string& needle, int ms = 5000) {
    std::int64_t deadline = t::now_ms() + ms;
    while (got.find(needle) == std::string::npos) {
        std::int64_t left = deadline - t::now_ms();
        if (left <= 0) return false;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, int(left)) <= 0) continue;
        char buf[8192];
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return false;
        got.append(buf, std::size_t(n));
    }
    return true;
}

// An event stream on folder `path` ("" the top): the socket, its head read into `got`.
int open_events(const std::string& path, std::string& got, const std::string& fields = "") {
    int fd = t::connect_port(g_srv.http_port);
    cr_assert(fd >= 0);
    cr_assert(t::send_all(fd, request("GET", "/events?path=" + path, fields)));
    cr_assert(read_until(fd, got, ": connected\n\n"), "no event stream: %s", got.c_str());
    return fd;
}

}  // namespace

TestSuite(e2e_page_http, .fini = t::teardown, .timeout = 60);

Test(e2e_page_http, a_browser_gets_the_page_and_everyone_else_json) {
    t::boot();
    cr_assert_eq(t::status_of(put("a/b/x%20%3C1%3E.txt", "hello")), 201);
    // A browser's navigation: the page, with the listing in it, escaped.
    std::string page = get("/files/a/b/", kBrowser);
    cr_assert_eq(t::status_of(page), 200);
    cr_assert(t::header_of(page, "Content-Type").find("text/html") == 0);
    cr_assert_eq(t::header_of(page, "Vary"), "Accept");
    cr_assert(t::header_of(page, "Content-Security-Policy").find("default-src 'none'") == 0);
    cr_assert(t::header_of(page, "Content-Security-Policy").find("frame-ancestors 'none'") !=
              std::string::npos);
    cr_assert_eq(t::header_of(page, "X-Content-Type-Options"), "nosniff");
    std::string body = t::body_of(page);
    cr_assert(body.find("data-name=\"x &lt;1&gt;.txt\"") != std::string::npos, "%s", body.c_str());
    cr_assert(body.find("href=\"/files/a/b/x%20%3C1%3E.txt\"") != std::string::npos, "%s",
              body.c_str());
    cr_assert(body.find(t::sha256_hex("hello")) != std::string::npos);
    cr_assert(body.find("<script>") == std::string::npos, "no inline script");
    // The top folder, by `/` and by /files/.
    for (const char* path : {"/", "/files/", "/files"}) {
        std::string top = get(path, kBrowser);
        cr_assert_eq(t::status_of(top), 200, "%s", path);
        cr_assert(t::body_of(top).find("data-name=\"a\" data-type=\"dir\"") != std::string::npos,
                  "%s", path);
    }
    // curl, scripts, no Accept, a tie: JSON as before, with Vary too.
    for (std::string accept : {"", "Accept: */*\r\n", "Accept: application/json\r\n",
                               "Accept: text/html, application/json\r\n"}) {
        std::string json = get("/files/a/b/", accept);
        cr_assert_eq(t::header_of(json, "Content-Type"), "application/json", "%s", accept.c_str());
        cr_assert_eq(t::header_of(json, "Vary"), "Accept");
        std::string root = get("/", accept);
        cr_assert(t::body_of(root).find("\"name\":\"duet\"") != std::string::npos);
        cr_assert_eq(t::header_of(root, "Vary"), "Accept");
    }
    // A tar download is a download even from a browser; a missing folder is 404.
    cr_assert_eq(t::header_of(get("/files/a/?archive=tar", kBrowser), "Content-Type"),
                 "application/x-tar");
    cr_assert_eq(t::status_of(get("/files/nope/", kBrowser)), 404);
}

Test(e2e_page_http, assets_are_gzipped_cached_and_tagged) {
    t::boot();
    std::string page = t::body_of(get("/", kBrowser));
    std::size_t at = page.find("/assets/app.js?v=");
    cr_assert(at != std::string::npos, "%s", page.c_str());
    std::string url = page.substr(at, page.find('"', at) - at);
    std::string plain = get(url);
    cr_assert_eq(t::status_of(plain), 200);
    cr_assert(t::header_of(plain, "Content-Type").find("text/javascript") == 0);
    cr_assert(t::header_of(plain, "Cache-Control").find("max-age=31536000") != std::string::npos);
    std::string etag = t::header_of(plain, "ETag");
    cr_assert_eq(etag.size(), 18u, "%s", etag.c_str());
    cr_assert_eq(url.substr(url.find("?v=") + 3), etag.substr(1, 16), "the URL carries the ETag");
    cr_assert(t::header_of(plain, "Content-Encoding").empty());
    std::string gz = get(url, "Accept-Encoding: gzip, deflate, br\r\n");
    cr_assert_eq(t::header_of(gz, "Content-Encoding"), "gzip");
    cr_assert_eq(t::header_of(gz, "ETag"), etag);
    cr_assert_eq(t::header_of(gz, "Vary"), "Accept-Encoding");
    std::string gzbody = t::body_of(gz);
    cr_assert(gzbody.size() < t::body_of(plain).size());
    // The gzipped bytes are the plain ones.
    std::string dir = t::make_tmpdir();
    t::write_file(dir + "/a.gz", gzbody);
    cr_assert_eq(t::sh("gzip -dc '" + dir + "/a.gz' | sha256sum | cut -c1-64"),
                 t::sha256_hex(t::body_of(plain)) + "\n");
    cr_assert_eq(t::status_of(get(url, "If-None-Match: " + etag + "\r\n")), 304);
    cr_assert_eq(t::status_of(get("/assets/nothing.js")), 404);
    // The whole page, its assets included, weighs at most 64 KiB before compression.
    std::size_t total = page.size();
    for (const char* name :
         {"common.js", "listing.js", "uploads.js", "app.js", "app.css", "hash_worker.js"})
        total += t::body_of(get(std::string("/assets/") + name)).size();
    cr_assert(total <= 64 * 1024, "the page weighs %zu bytes", total);
}

Test(e2e_page_http, stored_files_never_run_as_documents) {
    t::boot();
    struct Case {
        const char* name;
        const char* type;
        bool attachment;
    } cases[] = {
        {"x.html", "application/octet-stream", true},
        {"x.svg", "application/octet-stream", true},
        {"X.HTM", "application/octet-stream", true},
        {"x.xml", "application/octet-stream", true},
        {"x.js", "application/octet-stream", true},
        {"x.bin", "application/octet-stream", true},
        {"x.png", "image/png", false},
        {"x.txt", "text/plain; charset=utf-8", false},
        {"d/x.PDF", "application/pdf", false},
        {"x.mp4", "video/mp4", false},
    };
    for (const Case& c : cases) {
        cr_assert(t::status_of(put(c.name, "<script>alert(1)</script>")) < 300);
        std::string r = get(std::string("/files/") + c.name);
        cr_assert_eq(t::header_of(r, "Content-Type"), c.type, "%s", c.name);
        cr_assert_eq(t::header_of(r, "Content-Security-Policy"), "sandbox", "%s", c.name);
        cr_assert_eq(t::header_of(r, "X-Content-Type-Options"), "nosniff", "%s", c.name);
        std::string cd = t::header_of(r, "Content-Disposition");
        cr_assert_eq(cd.find("attachment") == 0, c.attachment, "%s: %s", c.name, cd.c_str());
        // A range of it too.
        std::string part = get(std::string("/files/") + c.name, "Range: bytes=0-3\r\n");
        cr_assert_eq(t::status_of(part), 206);
        cr_assert_eq(t::header_of(part, "Content-Security-Policy"), "sandbox");
    }
}

Test(e2e_page_http, events_tell_every_change_in_the_folder) {
    t::boot();
    cr_assert_eq(t::status_of(put("d/old.txt", "x")), 201);
    std::string got;
    int fd = open_events("d/", got);
    cr_assert_eq(t::status_of(got), 200);
    cr_assert_eq(t::header_of(got, "Content-Type"), "text/event-stream");
    // An HTTP PUT, a file-port delete, a move, a folder, and a change elsewhere (not told).
    cr_assert_eq(t::status_of(put("elsewhere.txt", "y")), 201);
    cr_assert_eq(t::status_of(put("d/new.txt", "hello")), 201);
    cr_assert(read_until(fd, got, "event: created\ndata: {\"name\":\"d/new.txt\",\"size\":5"), "%s",
              got.c_str());
    cr_assert(got.find(t::sha256_hex("hello")) != std::string::npos);
    int ffd = t::files_conn(g_srv);
    cr_assert_eq(t::files_cmd(ffd, "DEL d/old.txt"), "OK");
    cr_assert(read_until(fd, got, "event: deleted\ndata: {\"name\":\"d/old.txt\"}"), "%s",
              got.c_str());
    cr_assert_eq(t::files_cmd(ffd, "MOVE d/new.txt d/moved.txt"), "OK");
    ::close(ffd);
    cr_assert(
        read_until(fd, got, "event: moved\ndata: {\"from\":\"d/new.txt\",\"to\":\"d/moved.txt\"}"),
        "%s", got.c_str());
    cr_assert(t::status_of(put("d/moved.txt", "again")) == 200);
    cr_assert(read_until(fd, got, "event: replaced\ndata: {\"name\":\"d/moved.txt\",\"size\":5"),
              "%s", got.c_str());
    cr_assert_eq(t::status_of(http(request("MKCOL", "/files/d/sub/"))), 201);
    cr_assert(read_until(fd, got, "event: created\ndata: {\"name\":\"d/sub\",\"type\":\"dir\""),
              "%s", got.c_str());
    // A file copied in by hand: told once its digest is known.
    t::write_file(g_srv.data_dir + "/d/by-hand.txt", "cp");
    cr_assert(
        read_until(fd, got,
                   "\"name\":\"d/by-hand.txt\",\"size\":2,\"sha256\":\"" + t::sha256_hex("cp")),
        "%s", got.c_str());
    cr_assert(got.find("elsewhere") == std::string::npos, "only this folder's changes");
    ::close(fd);
}

Test(e2e_page_http, a_reconnect_catches_up_or_resets) {
    t::boot();
    std::string got;
    int fd = open_events("", got);
    cr_assert_eq(t::status_of(put("one.txt", "1")), 201);
    cr_assert(read_until(fd, got, "\"name\":\"one.txt\""));
    std::size_t at = got.rfind("id: ");
    std::string id = got.substr(at + 4, got.find('\n', at) - at - 4);
    ::close(fd);
    // Missed while away: two changes, told on reconnect after the last id seen.
    cr_assert_eq(t::status_of(put("two.txt", "2")), 201);
    cr_assert_eq(t::status_of(http(request("DELETE", "/files/one.txt"))), 204);
    std::string again;
    fd = open_events("", again, "Last-Event-ID: " + id + "\r\n");
    cr_assert(read_until(fd, again, "event: deleted\ndata: {\"name\":\"one.txt\"}"), "%s",
              again.c_str());
    cr_assert(again.find("\"name\":\"two.txt\"") != std::string::npos);
    cr_assert(again.find("\"name\":\"one.txt\",\"size\"") == std::string::npos, "nothing twice");
    ::close(fd);
    // An id that is not one of this image's: a reset.
    std::string old;
    fd = open_events("", old, "Last-Event-ID: 12\r\n");
    cr_assert(read_until(fd, old, "event: reset\n"), "%s", old.c_str());
    ::close(fd);
}

Test(e2e_page_http, an_event_stream_crosses_a_reload) {
    t::boot();
    std::string got;
    int fd = open_events("", got);
    cr_assert(t::reload_and_wait(g_srv));
    cr_assert(t::reload_and_wait(g_srv));
    // The same connection: the new image says reset (it cannot know what it missed), then goes
    // on telling changes.
    cr_assert(read_until(fd, got, "event: reset\n"), "%s", got.c_str());
    cr_assert_eq(t::status_of(put("after.txt", "z")), 201);
    cr_assert(read_until(fd, got, "\"name\":\"after.txt\""), "%s", got.c_str());
    ::close(fd);
}

Test(e2e_page_http, the_token_guards_events_and_the_listing_in_the_page) {
    t::boot({"--token", "s3cret"});
    cr_assert_eq(t::status_of(put("secret-name.txt", "x", "Authorization: Bearer s3cret\r\n")),
                 201);
    cr_assert_eq(t::status_of(get("/events?path=")), 401);
    // The browser's navigation carries no token: the page, without a name from the store.
    std::string page = get("/files/", kBrowser);
    cr_assert_eq(t::status_of(page), 200);
    cr_assert(t::body_of(page).find("secret-name") == std::string::npos);
    cr_assert(t::body_of(page).find("data-auth=\"needed\"") != std::string::npos);
    cr_assert(t::body_of(get("/", kBrowser)).find("secret-name") == std::string::npos);
    std::string with = get("/files/", std::string(kBrowser) + "Authorization: Bearer s3cret\r\n");
    cr_assert(t::body_of(with).find("secret-name") != std::string::npos);
    std::string got;
    int fd = open_events("", got, "Authorization: Bearer s3cret\r\n");
    ::close(fd);
    // The assets need no token.
    cr_assert_eq(t::status_of(get("/assets/app.css")), 200);
}

Test(e2e_page_http, keepalive_comments_keep_a_quiet_stream_open) {
    // --idle-timeout 1: the comments come every half of it, so the stream outlives it.
    t::boot({"--idle-timeout", "1"});
    std::string got;
    int fd = open_events("", got);
    cr_assert(read_until(fd, got, ": keep-alive\n\n", 3000), "%s", got.c_str());
    std::int64_t until = t::now_ms() + 2500;
    while (t::now_ms() < until) {
        pollfd p{fd, POLLIN, 0};
        ::poll(&p, 1, 100);
        if (p.revents) {
            char buf[512];
            cr_assert(::recv(fd, buf, sizeof buf, 0) > 0, "the stream was closed");
        }
    }
    ::close(fd);
}

// A folder too big for one page: the page carries the first 5,000 entries (made on a helper, off
// the loop) and says how many more the script lists; HEAD gives the same length.
Test(e2e_page_http, a_big_folder_page_shows_5000_entries_and_counts_the_rest) {
    t::boot();
    constexpr int kFiles = 5100;
    std::string dir = g_srv.data_dir + "/big";
    cr_assert(t::sh("mkdir '" + dir + "' && echo ok") == "ok\n");
    for (int i = 0; i < kFiles; ++i)
        cr_assert(t::write_file(dir + "/f" + std::to_string(100000 + i) + ".txt", "x"));
    // Copied in by hand: listed once each is hashed.
    std::size_t listed = 0;
    for (std::int64_t deadline = t::now_ms() + 30000; t::now_ms() < deadline; usleep(50000)) {
        std::string json = t::body_of(get("/files/big/"));
        listed = 0;
        for (std::size_t at = 0; (at = json.find("\"name\":", at)) != std::string::npos; ++at)
            ++listed;
        if (listed == kFiles) break;
    }
    cr_assert_eq(listed, std::size_t(kFiles));
    std::string page = get("/files/big/", kBrowser);
    cr_assert_eq(t::status_of(page), 200);
    std::string body = t::body_of(page);
    cr_assert_eq(t::header_of(page, "Content-Length"), std::to_string(body.size()));
    std::size_t rows = 0;
    for (std::size_t at = 0; (at = body.find("<tr data-name=", at)) != std::string::npos; ++at)
        ++rows;
    cr_assert_eq(rows, 5000u);
    cr_assert(body.find("data-name=\"f104999.txt\"") != std::string::npos);
    cr_assert(body.find("data-name=\"f105000.txt\"") == std::string::npos);
    cr_assert(body.find("100 more entries are not shown here") != std::string::npos);
    cr_assert(body.rfind("</html>\n") == body.size() - 8);
    std::string head = t::http(g_srv.http_port, request("HEAD", "/files/big/", kBrowser), true);
    cr_assert_eq(t::status_of(head), 200);
    cr_assert_eq(t::header_of(head, "Content-Length"), std::to_string(body.size()));
}
