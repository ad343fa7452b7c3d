// Black-box tests of README "Folders": paths on both ports and every door, uploads that make
// their folders, per-folder and recursive listings, MKCOL/MKDIR, conflicts, folders made and
// removed by hand, and paths across a reload.
#include <criterion/criterion.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "helper.hpp"

namespace {

t::Duet& g_srv = t::served;

using t::request;
std::string http(const std::string& raw) {
    return t::http(g_srv.http_port, raw);
}
std::string put(const std::string& path, const std::string& body, const std::string& fields = "") {
    return http(request("PUT", "/files/" + path,
                        "Content-Length: " + std::to_string(body.size()) + "\r\n" + fields, body));
}
std::string get(const std::string& path) {
    return http(request("GET", "/files/" + path));
}
int status(const std::string& raw) {
    return t::status_of(http(raw));
}

int files_conn() {
    return t::files_conn(g_srv);
}
std::string cmd(int fd, const std::string& line) {
    return t::files_cmd(fd, line);
}
// "OK N" then N lines.
std::vector<std::string> list(int fd, const std::string& args) {
    std::string ok = cmd(fd, "LIST" + (args.empty() ? "" : " " + args));
    cr_assert(ok.rfind("OK ", 0) == 0, "LIST %s: %s", args.c_str(), ok.c_str());
    std::vector<std::string> lines;
    for (int n = std::atoi(ok.c_str() + 3); n > 0; --n) lines.push_back(t::read_line(fd));
    return lines;
}

std::string file_line(const std::string& name, const std::string& data) {
    return name + " " + std::to_string(data.size()) + " " + t::sha256_hex(data);
}

bool is_dir(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Polls the JSON listing at `url` until it contains `needle`, for at most `ms`.
bool listed_within(const std::string& url, const std::string& needle, int ms) {
    std::int64_t deadline = t::now_ms() + ms;
    for (;;) {
        if (t::body_of(http(request("GET", url))).find(needle) != std::string::npos) return true;
        if (t::now_ms() >= deadline) return false;
        usleep(2000);
    }
}

}  // namespace

TestSuite(e2e_folders, .fini = t::teardown, .timeout = 60);

Test(e2e_folders, a_nested_put_makes_its_folders_and_both_ports_see_it_at_once) {
    t::boot();
    std::string r = put("photos/2024/a%20b.txt", "hello");
    cr_assert_eq(t::status_of(r), 201, "%s", r.c_str());
    cr_expect(t::body_of(r).find("\"name\":\"photos/2024/a b.txt\"") != std::string::npos, "%s",
              r.c_str());
    cr_expect_eq(t::header_of(r, "Location"), "/files/photos/2024/a%20b.txt");
    cr_expect(is_dir(g_srv.data_dir + "/photos/2024"), "the store mirrors the tree");
    cr_expect_eq(t::read_file(g_srv.data_dir + "/photos/2024/a b.txt"), "hello");
    cr_expect_eq(t::body_of(get("photos/2024/a%20b.txt")), "hello");

    // The port lists it at once, folders as NAME/ - -.
    int fd = files_conn();
    cr_expect_eq(list(fd, ""), std::vector<std::string>{"photos/ - -"});
    cr_expect_eq(list(fd, "photos/"), std::vector<std::string>{"2024/ - -"});
    cr_expect_eq(list(fd, "photos/2024/"),
                 std::vector<std::string>{file_line("a%20b.txt", "hello")});
    cr_expect_eq(list(fd, "-r"),
                 std::vector<std::string>{file_line("photos/2024/a%20b.txt", "hello")});
    cr_expect_eq(list(fd, "-r photos/"),
                 std::vector<std::string>{file_line("2024/a%20b.txt", "hello")});
    std::string got = cmd(fd, "GET photos/2024/a%20b.txt");
    cr_expect_eq(got, "OK 5 " + t::sha256_hex("hello"));
    cr_expect_eq(t::read_n(fd, 5), "hello");

    // And the reverse: a port upload into new folders, listed by HTTP.
    cr_assert(t::send_all(fd, "PUT docs/notes/n.txt 3\nabc"));
    cr_expect_eq(t::read_line(fd), "OK 3 " + t::sha256_hex("abc"));
    std::string top = t::body_of(http(request("GET", "/files/")));
    cr_expect(top.rfind("[{\"name\":\"docs\",\"type\":\"dir\",\"mtime\":", 0) == 0, "%s",
              top.c_str());
    cr_expect(top.find("{\"name\":\"photos\",\"type\":\"dir\"") != std::string::npos, "%s",
              top.c_str());
    std::string notes = t::body_of(http(request("GET", "/files/docs/notes/")));
    cr_expect(
        notes.rfind("[{\"name\":\"n.txt\",\"size\":3,\"sha256\":\"" + t::sha256_hex("abc"), 0) == 0,
        "%s", notes.c_str());
    cr_expect(notes.find("\"type\":\"file\"}]") != std::string::npos, "%s", notes.c_str());
    std::string rec = t::body_of(http(request("GET", "/files/?recursive=1")));
    std::size_t d = rec.find("\"name\":\"docs/notes/n.txt\""),
                p = rec.find("\"name\":\"photos/2024/a b.txt\"");
    cr_expect(d != std::string::npos && p != std::string::npos && d < p, "%s", rec.c_str());
    cr_expect(rec.find("\"type\":\"dir\"") == std::string::npos, "recursive lists files only");
    cr_expect_eq(t::body_of(http(request("GET", "/files?recursive=1"))), rec);
    close(fd);
}

Test(e2e_folders, listings_are_sorted_by_name_in_byte_order_across_folders) {
    t::boot();
    // '-' (0x2D) sorts before '/' (0x2F): "b-c" comes after folder "b" and before "b0".
    for (const char* p : {"b/x", "b-c", "b0", "a", "b/y/z"}) {
        std::string r = put(p, p);  // the answer is shown if it is not 201 (seen once, unexplained)
        cr_assert_eq(t::status_of(r), 201, "PUT %s: [%s]", p, r.substr(0, 300).c_str());
    }
    int fd = files_conn();
    cr_expect_eq(list(fd, ""),
                 (std::vector<std::string>{file_line("a", "a"), "b/ - -", file_line("b-c", "b-c"),
                                           file_line("b0", "b0")}));
    cr_expect_eq(list(fd, "b/"), (std::vector<std::string>{file_line("x", "b/x"), "y/ - -"}));
    cr_expect_eq(list(fd, "-r"),
                 (std::vector<std::string>{file_line("a", "a"), file_line("b-c", "b-c"),
                                           file_line("b/x", "b/x"), file_line("b/y/z", "b/y/z"),
                                           file_line("b0", "b0")}));
    close(fd);
}

Test(e2e_folders, folder_urls_redirect_and_missing_or_wrong_kinds_are_404) {
    t::boot();
    cr_assert_eq(t::status_of(put("a/f.txt", "x")), 201);
    std::string r = http(request("GET", "/files/a?recursive=1"));
    cr_expect_eq(t::status_of(r), 301, "%s", r.c_str());
    cr_expect_eq(t::header_of(r, "Location"), "/files/a/?recursive=1");
    cr_expect_eq(status(request("GET", "/files/a/f.txt/")), 404, "a file's path with a '/'");
    cr_expect_eq(status(request("GET", "/files/nothing/")), 404);
    cr_expect_eq(status(request("GET", "/files/a/f.txt/x")), 404);
    int fd = files_conn();
    cr_expect_eq(cmd(fd, "LIST nothing/"), "ERR 404 not found");
    cr_expect_eq(cmd(fd, "LIST a/f.txt"), "ERR 404 not a folder");
    cr_expect_eq(cmd(fd, "GET a/f.txt/"), "ERR 404 not a folder");
    cr_expect_eq(cmd(fd, "GET nothing/"), "ERR 404 not found");
    close(fd);
}

Test(e2e_folders, mkcol_and_mkdir_answer_as_rfc_4918_says) {
    t::boot();
    std::string r = http(request("MKCOL", "/files/new/"));
    cr_expect_eq(t::status_of(r), 201, "%s", r.c_str());
    cr_expect_eq(t::header_of(r, "Location"), "/files/new/");
    cr_expect(is_dir(g_srv.data_dir + "/new"));
    cr_expect_eq(status(request("MKCOL", "/files/new/")), 405, "exists");
    cr_expect_eq(status(request("MKCOL", "/files/new")), 405, "without the '/' too");
    cr_expect_eq(status(request("MKCOL", "/files/x/y/")), 409, "parent missing");
    cr_assert_eq(t::status_of(put("file", "f")), 201);
    cr_expect_eq(status(request("MKCOL", "/files/file/")), 405, "a file is there");
    cr_expect_eq(status(request("MKCOL", "/files/file/sub/")), 409, "parent is a file");
    cr_expect_eq(status(request("MKCOL", "/files/")), 405, "the top folder exists");
    cr_expect_eq(status(request("DELETE", "/files/")), 403, "the top folder stays");

    int fd = files_conn();
    cr_expect_eq(cmd(fd, "MKDIR new/inner/"), "OK");
    cr_expect_eq(cmd(fd, "MKDIR new/inner/"), "ERR 405 the folder exists");
    cr_expect_eq(cmd(fd, "MKDIR file"), "ERR 405 a file has this name");
    cr_expect_eq(cmd(fd, "MKDIR q/r/"), "ERR 409 the folder that would hold it does not exist");
    cr_expect_eq(cmd(fd, "MKDIR file/s/"), "ERR 409 a folder on the way is a file");
    cr_expect_eq(list(fd, "new/"), std::vector<std::string>{"inner/ - -"});
    std::string listing = t::body_of(http(request("GET", "/files/new/")));
    cr_expect(listing.rfind("[{\"name\":\"inner\",\"type\":\"dir\",\"mtime\":", 0) == 0, "%s",
              listing.c_str());
    close(fd);
}

Test(e2e_folders, an_upload_through_a_file_or_onto_a_folder_is_409_before_its_bytes) {
    t::boot();
    cr_assert_eq(t::status_of(put("a/b/c.txt", "c")), 201);
    std::string r = put("a/b/c.txt/d.txt", "d");
    cr_expect_eq(t::status_of(r), 409, "%s", r.c_str());
    cr_expect(t::is_json_error(r, "a/b/c.txt is a file"), "%s", r.c_str());
    r = put("a/b", "onto a folder");
    cr_expect_eq(t::status_of(r), 409, "%s", r.c_str());
    cr_expect(t::is_json_error(r, "a/b is a folder"), "%s", r.c_str());
    // Said before the body: with Expect: 100-continue no 100 is sent.
    r = http(request("PUT", "/files/a/b/c.txt/e", "Content-Length: 5\r\nExpect: 100-continue\r\n"));
    cr_expect_eq(t::status_of(r), 409, "%s", r.c_str());

    int fd = files_conn();
    cr_assert(t::send_all(fd, "PUT a/b/c.txt/x 1\nx"));
    cr_expect_eq(t::read_line(fd), "ERR 409 a/b/c.txt is a file");
    cr_expect(t::peer_closed(fd), "the bytes follow: the session closes");
    close(fd);
    fd = files_conn();
    cr_assert(t::send_all(fd, "PUT a/ 1\nx"));
    cr_expect(t::read_line(fd).rfind("ERR 400 a name ending in '/' is a folder", 0) == 0);
    close(fd);
    cr_expect_eq(t::sh("cd '" + g_srv.data_dir + "' && find a | sort | tr '\\n' ' '"),
                 "a a/b a/b/c.txt ");
}

Test(e2e_folders, resumable_doors_publish_into_new_folders) {
    t::boot();
    // tus: the filename in the metadata is a path.
    std::string r = http(request("POST", "/uploads",
                                 "Tus-Resumable: 1.0.0\r\nUpload-Length: 3\r\n"
                                 "Upload-Metadata: filename dC9hL2IuYmlu\r\n"));  // t/a/b.bin
    cr_assert_eq(t::status_of(r), 201, "%s", r.c_str());
    std::string loc = t::header_of(r, "Location");
    r = http(request("PATCH", loc,
                     "Tus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nContent-Length: 3\r\n"
                     "Content-Type: application/offset+octet-stream\r\n",
                     "tus"));
    cr_expect_eq(t::status_of(r), 204, "%s", r.c_str());
    cr_expect_eq(t::read_file(g_srv.data_dir + "/t/a/b.bin"), "tus");
    // IETF: a PUT with Upload-Complete to a path.
    int h = t::connect_port(g_srv.http_port);
    cr_assert(t::send_all(h, request("PUT", "/files/i/e/f.bin",
                                     "Upload-Complete: ?1\r\nUpload-Draft-Interop-Version: 6\r\n"
                                     "Content-Length: 4\r\n",
                                     "ietf")));
    do r = t::read_response(h);  // 104s first
    while (t::status_of(r) > 0 && t::status_of(r) < 200);
    close(h);
    cr_expect_eq(t::status_of(r), 201, "%s", r.c_str());
    cr_expect_eq(t::read_file(g_srv.data_dir + "/i/e/f.bin"), "ietf");
    // The port: a sized PUT cut short into a new folder, then RESUME.
    int fd = files_conn();
    cr_assert(t::send_all(fd, "PUT n/c/p.bin 6\nabc"));
    ::shutdown(fd, SHUT_WR);
    cr_expect_eq(t::read_line(fd), "ERR 400 short upload: got 3 of 6 bytes, partial kept");
    close(fd);
    fd = files_conn();
    cr_expect_eq(cmd(fd, "RESUME n/c/p.bin 6"), "OK 3");
    cr_assert(t::send_all(fd, "def"));
    cr_expect_eq(t::read_line(fd), "OK 6 " + t::sha256_hex("abcdef"));
    cr_expect_eq(list(fd, "-r n/"), std::vector<std::string>{file_line("c/p.bin", "abcdef")});
    close(fd);
    cr_expect_eq(t::body_of(get("n/c/p.bin")), "abcdef");

    // Across doors: a port PUT into a/b/ cut short, continued by tus with the ID PARTIAL gives,
    // then listed by HTTP.
    fd = files_conn();
    cr_assert(t::send_all(fd, "PUT x/y/z.bin 6\n123"));
    ::shutdown(fd, SHUT_WR);
    cr_expect_eq(t::read_line(fd), "ERR 400 short upload: got 3 of 6 bytes, partial kept");
    close(fd);
    fd = files_conn();
    std::string ok = cmd(fd, "PARTIAL x/y/z.bin");
    cr_assert_eq(ok, "OK 1");
    std::string line = t::read_line(fd);  // NAME OFFSET SIZE ID EXPIRES
    close(fd);
    char name[64], id[64];
    unsigned long off = 0, size = 0;
    cr_assert_eq(std::sscanf(line.c_str(), "%63s %lu %lu %63s", name, &off, &size, id), 4, "%s",
                 line.c_str());
    cr_expect_eq(std::string(name), "x/y/z.bin");
    r = http(request("HEAD", std::string("/uploads/") + id, "Tus-Resumable: 1.0.0\r\n"));
    cr_expect_eq(t::header_of(r, "Upload-Offset"), "3", "%s", r.c_str());
    r = http(request("PATCH", std::string("/uploads/") + id,
                     "Tus-Resumable: 1.0.0\r\nUpload-Offset: 3\r\nContent-Length: 3\r\n"
                     "Content-Type: application/offset+octet-stream\r\n",
                     "456"));
    cr_expect_eq(t::status_of(r), 204, "%s", r.c_str());
    std::string listing = t::body_of(http(request("GET", "/files/x/y/")));
    cr_expect(listing.find("\"name\":\"z.bin\",\"size\":6,\"sha256\":\"" +
                           t::sha256_hex("123456")) != std::string::npos,
              "%s", listing.c_str());
    // A resumable upload through a file, or onto a folder, is refused at its creation.
    r = http(request("POST", "/uploads",
                     "Tus-Resumable: 1.0.0\r\nUpload-Length: 1\r\n"
                     "Upload-Metadata: filename eC95L3ouYmluL3E=\r\n"));  // x/y/z.bin/q
    cr_expect_eq(t::status_of(r), 409, "%s", r.c_str());
    r = http(request("POST", "/files/x/y",
                     "Upload-Complete: ?1\r\nUpload-Draft-Interop-Version: 6\r\n"
                     "Content-Length: 1\r\n",
                     "q"));
    cr_expect(r.find(" 409 ") != std::string::npos, "%s", r.c_str());
    // A tus name that breaks a rule is refused with the rule named.
    r = http(request("POST", "/uploads",
                     "Tus-Resumable: 1.0.0\r\nUpload-Length: 1\r\n"
                     "Upload-Metadata: filename YS8uaGlkZGVu\r\n"));  // a/.hidden
    cr_expect_eq(t::status_of(r), 400, "%s", r.c_str());
    cr_expect(t::is_json_error(r, "must not start with '.'"), "%s", r.c_str());
}

Test(e2e_folders, folders_made_moved_and_removed_by_hand_are_seen) {
    t::boot();
    std::string data = g_srv.data_dir;
    // A file dropped into a folder made a moment before is listed within a second, every time:
    // the folder is watched before it is read.
    for (int i = 0; i < 500; ++i) {
        std::string dir = data + "/h" + std::to_string(i);
        cr_assert(::mkdir(dir.c_str(), 0755) == 0);
        cr_assert(t::write_file(dir + "/f.txt", "x"));
        cr_assert(listed_within("/files/h" + std::to_string(i) + "/", "\"f.txt\"", 1000),
                  "round %d: f.txt not listed within 1 s", i);
    }
    // Nested folders copied in at once (mkdir -p, then files at each level).
    cr_assert(::system(("mkdir -p '" + data + "/deep/a/b/c' && echo 1 > '" + data +
                        "/deep/a/one' && echo 3 > '" + data + "/deep/a/b/c/three'")
                           .c_str()) == 0);
    cr_expect(listed_within("/files/deep/?recursive=1", "\"a/b/c/three\"", 1000));
    cr_expect(listed_within("/files/deep/a/", "\"one\"", 1000));
    // Moved away by hand: gone from the listing, and found under its new name.
    cr_assert(::rename((data + "/deep").c_str(), (data + "/moved").c_str()) == 0);
    cr_expect(listed_within("/files/moved/a/b/c/", "\"three\"", 1000));
    cr_expect_eq(status(request("GET", "/files/deep/")), 404);
    int fd = files_conn();
    cr_expect_eq(list(fd, "-r moved/"), (std::vector<std::string>{file_line("a/b/c/three", "3\n"),
                                                                  file_line("a/one", "1\n")}));
    // A file written into the moved folder is still seen (its watch followed it).
    cr_assert(t::write_file(data + "/moved/a/b/new", "n"));
    cr_expect(listed_within("/files/moved/a/b/", "\"new\"", 1000));
    // Removed by hand: gone.
    cr_assert(::system(("rm -rf '" + data + "/moved'").c_str()) == 0);
    std::int64_t deadline = t::now_ms() + 1000;
    while (t::now_ms() < deadline && status(request("GET", "/files/moved/")) != 404) usleep(2000);
    cr_expect_eq(status(request("GET", "/files/moved/")), 404);
    cr_expect(t::body_of(http(request("GET", "/files/?recursive=1"))).find("moved") ==
              std::string::npos);
    close(fd);
}

Test(e2e_folders, folders_over_the_watch_limit_are_read_again_every_few_seconds) {
    std::string dir = t::make_tmpdir();
    t::remove_at_teardown(dir);
    std::string data = dir + "/data";
    cr_assert(::system(("mkdir -p '" + data + "/a' '" + data + "/b' && echo x > '" + data +
                        "/a/x.txt' && echo x > '" + data + "/b/x.txt'")
                           .c_str()) == 0);
    // One folder watch allowed (a test hook standing in for fs.inotify.max_user_watches): one of
    // "a" and "b" (in directory order) gets it, the other is over the limit.
    cr_assert(t::start(g_srv, {}, data, {"DUET_TEST_MAX_WATCHES=1"}));
    cr_assert(t::wait_log(g_srv, "cannot watch folder "), "%s", g_srv.err_log.c_str());
    std::size_t at = g_srv.err_log.find("cannot watch folder ") + 20;
    std::string over = g_srv.err_log.substr(at, 1), watched = over == "a" ? "b" : "a";
    cr_assert(over == "a" || over == "b", "%s", g_srv.err_log.c_str());
    std::string u = "/files/" + over + "/";
    cr_expect(listed_within(u, "\"x.txt\"", 5000));
    cr_assert(t::write_file(data + "/" + over + "/new.txt", "new"));
    cr_assert(::unlink((data + "/" + over + "/x.txt").c_str()) == 0);
    cr_assert(::system(("mkdir '" + data + "/" + over + "/c' && echo f > '" + data + "/" + over +
                        "/c/f.txt'")
                           .c_str()) == 0);
    cr_expect(listed_within(u, "\"new.txt\"", 5000), "a new file is seen");
    std::int64_t deadline = t::now_ms() + 5000;
    while (t::now_ms() < deadline &&
           t::body_of(http(request("GET", u))).find("x.txt") != std::string::npos)
        usleep(20000);
    cr_expect(t::body_of(http(request("GET", u))).find("x.txt") == std::string::npos,
              "a removed file goes");
    cr_expect(listed_within(u + "c/", "\"f.txt\"", 5000), "a new folder is read");
    // The watched folder still sees changes at once.
    cr_assert(t::write_file(data + "/" + watched + "/now.txt", "now"));
    cr_expect(listed_within("/files/" + watched + "/", "\"now.txt\"", 1000));
}

Test(e2e_folders, a_symlinked_folder_is_never_followed) {
    std::string dir = t::make_tmpdir();
    t::remove_at_teardown(dir);
    std::string data = dir + "/data", outside = dir + "/outside";
    cr_assert(::mkdir(data.c_str(), 0755) == 0 && ::mkdir(outside.c_str(), 0755) == 0);
    cr_assert(t::write_file(outside + "/secret", "s"));
    cr_assert(::symlink(outside.c_str(), (data + "/link").c_str()) == 0);
    cr_assert(t::start(g_srv, {}, data));
    cr_expect_eq(status(request("GET", "/files/link/secret")), 404);
    cr_expect_eq(status(request("GET", "/files/link/")), 404);
    std::string r = put("link/new", "n");
    cr_expect_eq(t::status_of(r), 409, "%s", r.c_str());
    int fd = files_conn();
    cr_expect(cmd(fd, "GET link/secret").rfind("ERR 404", 0) == 0);
    cr_expect(cmd(fd, "LIST link/").rfind("ERR 404", 0) == 0);
    close(fd);
    cr_expect_eq(t::sh("ls -A '" + outside + "' | tr '\\n' ' '"), "secret ");
}

Test(e2e_folders, paths_cross_a_reload) {
    t::boot();
    int fd = files_conn();
    cr_assert(t::send_all(fd, "PUT r/s/t.bin 10\n12345"));
    cr_assert(t::reload_and_wait(g_srv));
    cr_assert(t::send_all(fd, "67890"));
    cr_expect_eq(t::read_line(fd), "OK 10 " + t::sha256_hex("1234567890"));
    cr_expect_eq(list(fd, "r/s/"), std::vector<std::string>{file_line("t.bin", "1234567890")});
    close(fd);
    cr_expect_eq(t::body_of(get("r/s/t.bin")), "1234567890");
}

Test(e2e_folders, path_limits_are_enforced_with_the_rule_named) {
    t::boot();
    std::string deep;
    for (int i = 0; i < 33; ++i) deep += "d/";
    deep += "f";
    std::string r = put(deep, "x");
    cr_expect_eq(t::status_of(r), 400);
    cr_expect(t::is_json_error(r, "more than 32 folder levels"), "%s", r.c_str());
    std::string ok32;
    for (int i = 0; i < 31; ++i) ok32 += "d/";
    ok32 += "f";
    cr_expect_eq(t::status_of(put(ok32, "x")), 201, "32 segments are fine");
    std::string long_path = std::string(255, 'a') + "/" + std::string(255, 'b') + "/" +
                            std::string(255, 'c') + "/" + std::string(255, 'd') + "/ee";
    r = put(long_path, "x");
    cr_expect_eq(t::status_of(r), 400);
    cr_expect(t::is_json_error(r, "the limit is 1024"), "%s", r.c_str());
    cr_expect_eq(status(request("GET", "/files/a//b")), 400, "an empty segment");
    int fd = files_conn();
    cr_expect(cmd(fd, "STAT " + deep).find("more than 32 folder levels") != std::string::npos);
    close(fd);
}
