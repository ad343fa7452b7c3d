// Black-box tests of README "File names": the names people use, stored as the bytes given and
// reachable on both ports (HTTP percent-encoded in the target, JSON as UTF-8, the file port
// percent-encoded both ways), and entries dropped in by hand that break the rules, logged once and
// counted.
#include <criterion/criterion.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "helper.hpp"

namespace {

t::Duet& g_srv = t::served;

using t::request;

std::string http(const std::string& raw) {
    return t::http(g_srv.http_port, raw);
}

// Written here, apart from duet's encoders: every byte but unreserved ones as %XX (for a URL),
// and the port's rule (a space, '%' and every byte outside printable ASCII as %XX).
std::string hex_escape(unsigned char c) {
    static const char kHex[] = "0123456789ABCDEF";
    return {'%', kHex[c >> 4], kHex[c & 15]};
}
std::string url_escape(const std::string& s) {
    std::string out;
    for (unsigned char c : s)
        out += (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~')
                   ? std::string(1, char(c))
                   : hex_escape(c);
    return out;
}
std::string port_escape(const std::string& s) {
    std::string out;
    for (unsigned char c : s)
        out += (c > 0x20 && c < 0x7F && c != '%') ? std::string(1, char(c)) : hex_escape(c);
    return out;
}
std::string json_quoted(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

int files_conn() {
    return t::files_conn(g_srv);
}
std::string cmd(int fd, const std::string& line) {
    return t::files_cmd(fd, line);
}

long skipped_metric() {
    return long(t::metric_value(t::body_of(http(request("GET", "/metrics"))),
                                "duet_store_skipped_entries"));
}

std::size_t count_of(const std::string& hay, const std::string& needle) {
    std::size_t n = 0;
    for (std::size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1))
        ++n;
    return n;
}

const std::vector<std::string> kPeoplesNames = {
    "My Report (final).pdf",
    "na\xc3\xafve.txt",
    "a+b.txt",
    "x:y",
    "quote\"d'",
    "100% sure",
    "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e.txt",  // 日本語.txt
    "doc \xf0\x9f\x93\x84",                      // U+1F4C4
    "tilde~ & [brackets] {braces} #hash ?q",
};

}  // namespace

TestSuite(e2e_names, .fini = t::teardown, .timeout = 60);

Test(e2e_names, peoples_names_round_trip_over_http_and_the_port) {
    t::boot();
    for (std::size_t i = 0; i < kPeoplesNames.size(); ++i) {
        const std::string& name = kPeoplesNames[i];
        std::string body = "body " + std::to_string(i);
        std::string r =
            http(request("PUT", "/files/" + url_escape(name),
                         "Content-Length: " + std::to_string(body.size()) + "\r\n", body));
        cr_assert_eq(t::status_of(r), 201, "PUT %s: %s", name.c_str(), r.c_str());
        cr_expect(t::body_of(r).find("\"name\":" + json_quoted(name) + ",") != std::string::npos,
                  "%s", r.c_str());
        // Location is a URL: whatever its escapes, it names the same file.
        std::string loc = t::header_of(r, "Location");
        cr_expect_eq(t::body_of(http(request("GET", loc))), body, "Location %s", loc.c_str());
        cr_expect_eq(t::read_file(g_srv.data_dir + "/" + name), body, "stored under its bytes");
    }
    std::string listing = t::body_of(http(request("GET", "/files")));
    for (const std::string& name : kPeoplesNames)
        cr_expect(listing.find("{\"name\":" + json_quoted(name) + ",") != std::string::npos,
                  "JSON listing lacks %s: %s", name.c_str(), listing.c_str());

    int fd = files_conn();
    cr_assert_eq(cmd(fd, "LIST"), "OK " + std::to_string(kPeoplesNames.size()));
    std::vector<std::string> lines;
    for (std::size_t i = 0; i < kPeoplesNames.size(); ++i) lines.push_back(t::read_line(fd));
    for (const std::string& name : kPeoplesNames) {
        std::string want = port_escape(name) + " ";
        bool found = false;
        for (const std::string& l : lines) found = found || l.rfind(want, 0) == 0;
        cr_expect(found, "LIST lacks %s", want.c_str());
    }
    // The port takes the same names percent-encoded, for every command.
    for (std::size_t i = 0; i < kPeoplesNames.size(); ++i) {
        std::string enc = port_escape(kPeoplesNames[i]);
        std::string body = "body " + std::to_string(i);
        std::string got = cmd(fd, "GET " + enc);
        cr_expect(got.rfind("OK " + std::to_string(body.size()) + " ", 0) == 0, "GET %s: %s",
                  enc.c_str(), got.c_str());
        cr_expect_eq(t::read_n(fd, body.size()), body);
        cr_expect(cmd(fd, "STAT " + enc).rfind("OK ", 0) == 0);
        cr_expect_eq(cmd(fd, "DEL " + enc), "OK", "DEL %s", enc.c_str());
        cr_expect_eq(t::status_of(http(request("GET", "/files/" + url_escape(kPeoplesNames[i])))),
                     404);
    }
    // A port upload under an encoded name is the name HTTP sees.
    cr_assert(t::send_all(fd, "PUT My%20Notes%20%C3%A9t%C3%A9.txt 2\nhi"));
    cr_expect(t::read_line(fd).rfind("OK 2 ", 0) == 0);
    cr_expect_eq(t::body_of(http(request("GET", "/files/My%20Notes%20%c3%a9t%c3%a9.txt"))), "hi");

    // Moved by HTTP (the Destination percent-encoded) and by the port, under exactly those bytes.
    const std::string odd = "quote\"d' & 100% \xc3\xa9t\xc3\xa9.txt";
    std::string r = http(request("MOVE", "/files/My%20Notes%20%C3%A9t%C3%A9.txt",
                                 "Destination: /files/" + url_escape(odd) + "\r\n"));
    cr_expect_eq(t::status_of(r), 201, "%s", r.c_str());
    cr_expect_eq(t::read_file(g_srv.data_dir + "/" + odd), "hi");
    cr_expect_eq(cmd(fd, "MOVE " + port_escape(odd) + " " + port_escape("back (again).txt")), "OK");
    cr_expect_eq(t::read_file(g_srv.data_dir + "/back (again).txt"), "hi");
    close(fd);

    // A tus upload's filename (base64 in Upload-Metadata) is such a name too.
    std::string tus_name = "My Report (final) \xc3\xa9.pdf";
    std::string b64 = t::sh("printf '%s' '" + tus_name + "' | base64 -w0");
    r = http(request("POST", "/uploads",
                     "Tus-Resumable: 1.0.0\r\nUpload-Length: 3\r\nUpload-Metadata: filename " +
                         b64 +
                         "\r\nContent-Type: application/offset+octet-stream\r\n"
                         "Content-Length: 3\r\n",
                     "pdf"));
    cr_expect_eq(t::status_of(r), 201, "%s", r.c_str());
    cr_expect_eq(t::read_file(g_srv.data_dir + "/" + tus_name), "pdf");
}

Test(e2e_names, each_rule_is_refused_with_its_reason_on_both_ports) {
    t::boot();
    struct {
        std::string raw;  // as typed in a URL and on the port
        std::string why;
    } cases[] = {
        {"a%2Fb", "a '/' inside a name (%2F) at byte 2"},
        {"a%5Cb", "a backslash at byte 2"},
        {"a%00b", "a control character (U+0000) at byte 2"},
        {"a%1Fb", "a control character (U+001F) at byte 2"},
        {"a%7Fb", "a control character (U+007F) at byte 2"},
        {"a%C2%80b", "a control character (U+0080) at byte 2"},
        {"a%E2%80%AAb", "a bidirectional control (U+202A) at byte 2"},
        {"a%E2%81%A9b", "a bidirectional control (U+2069) at byte 2"},
        {".hidden", "must not start with '.'"},
        {"%2E%2E", "must not start with '.'"},
        {"%20a", "must not start with a space"},
        {"a%20", "must not end with a space"},
        {"a%C3", "not valid UTF-8 at byte 2"},
        {"a%zz", "bad percent escape at byte 2"},
        {std::string(256, 'n'), "is 256 bytes, the limit is 255"},
    };
    int fd = files_conn();
    for (const auto& c : cases) {
        std::string r = http(request("PUT", "/files/" + c.raw, "Content-Length: 1\r\n", "x"));
        cr_expect_eq(t::status_of(r), 400, "%s", c.raw.c_str());
        cr_expect(t::is_json_error(r, "invalid file name: " + c.why), "%s: %s", c.raw.c_str(),
                  t::body_of(r).c_str());
        cr_expect_eq(cmd(fd, "STAT " + c.raw), "ERR 400 invalid file name: " + c.why);
    }
    close(fd);
    cr_expect(t::store_listing(g_srv.data_dir).empty(), "%s",
              t::joined(t::store_listing(g_srv.data_dir)).c_str());
}

Test(e2e_names, entries_that_break_the_rules_are_logged_once_and_counted) {
    std::string dir = t::make_tmpdir();
    t::remove_at_teardown(dir);
    std::string data = dir + "/data";
    cr_assert(::mkdir(data.c_str(), 0755) == 0);
    cr_assert(t::write_file(data + "/My Notes.txt", "fine"));
    cr_assert(t::write_file(data + "/.hidden", "dot"));
    cr_assert(t::write_file(data + "/tab\there", "ctl"));
    cr_assert(::symlink("/etc/passwd", (data + "/link").c_str()) == 0);
    cr_assert(::mkfifo((data + "/fifo").c_str(), 0644) == 0);
    cr_assert(t::start(g_srv, {}, data));
    for (const char* line :
         {"not serving \".hidden\": invalid file name: must not start with '.'",
          "not serving \"tab\\x09here\": invalid file name: a control character "
          "(U+0009) at byte 4",
          "not serving \"link\": a symbolic link", "not serving \"fifo\": not a regular file"})
        cr_expect(t::wait_log(g_srv, line), "no log line %s in: %s", line, g_srv.err_log.c_str());
    std::string listing = t::body_of(http(request("GET", "/files")));
    cr_expect(listing.find("\"My Notes.txt\"") != std::string::npos, "%s", listing.c_str());
    cr_expect(
        listing.find("hidden") == std::string::npos && listing.find("link") == std::string::npos,
        "%s", listing.c_str());
    cr_expect_eq(skipped_metric(), 4);

    // One dropped in while duet runs is seen too, and a second change to it is not logged again.
    cr_assert(t::write_file(data + "/bad\x01name", "1"));
    cr_expect(t::wait_log(g_srv, "not serving \"bad\\x01name\""), "%s", g_srv.err_log.c_str());
    cr_assert(t::write_file(data + "/bad\x01name", "2"));
    // The next bad name's line comes after that change was handled (events arrive in order).
    cr_assert(t::write_file(data + "/bad\x02two", "x"));
    cr_expect(t::wait_log(g_srv, "not serving \"bad\\x02two\""), "%s", g_srv.err_log.c_str());
    cr_expect_eq(count_of(g_srv.err_log, "not serving \"bad\\x01name\""), 1u, "%s",
                 g_srv.err_log.c_str());
    cr_expect_eq(skipped_metric(), 6);
}
