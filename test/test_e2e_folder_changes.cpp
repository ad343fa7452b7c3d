// Black-box tests of README "Folders", the changes: DELETE of a folder (through the trash, a crash
// leaving the folder or nothing), MOVE of files and folders on both ports, Overwrite: F against a
// racing writer.
#include <criterion/criterion.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "helper.hpp"

namespace {

t::Duet& g_srv = t::served;

using t::request;
std::string http(const std::string& raw) {
    return t::http(g_srv.http_port, raw);
}
int status(const std::string& raw) {
    return t::status_of(http(raw));
}
std::string put(const std::string& path, const std::string& body) {
    return http(request("PUT", "/files/" + path,
                        "Content-Length: " + std::to_string(body.size()) + "\r\n", body));
}
int move_to(const std::string& src, const std::string& dst, const std::string& fields = "") {
    return status(request("MOVE", "/files/" + src, "Destination: " + dst + "\r\n" + fields));
}
int files_conn() {
    return t::files_conn(g_srv);
}
std::string cmd(int fd, const std::string& line) {
    return t::files_cmd(fd, line);
}
bool exists(const std::string& rel) {
    struct stat st;
    return ::lstat((g_srv.data_dir + "/" + rel).c_str(), &st) == 0;
}
// What the trash holds (the names in it), "" when empty or absent.
std::string trash() {
    return t::sh("ls -A '" + g_srv.data_dir + "/.duet-trash' 2>/dev/null | tr '\\n' ' '");
}
bool trash_empties_within(int ms) {
    std::int64_t deadline = t::now_ms() + ms;
    while (!trash().empty()) {
        if (t::now_ms() >= deadline) return false;
        usleep(5000);
    }
    return true;
}

}  // namespace

TestSuite(e2e_folder_changes, .fini = t::teardown, .timeout = 60);

Test(e2e_folder_changes, delete_of_a_folder_removes_everything_in_it_on_both_ports) {
    t::boot();
    for (const char* p : {"d/a.txt", "d/e/b.txt", "d/e/f/c.txt", "keep.txt"})
        cr_assert_eq(t::status_of(put(p, p)), 201);
    cr_expect_eq(status(request("DELETE", "/files/d/e/")), 204);
    cr_expect(!exists("d/e"), "gone from the disk");
    cr_expect_eq(status(request("GET", "/files/d/e/")), 404);
    cr_expect_eq(status(request("GET", "/files/d/e/b.txt")), 404);
    cr_expect_eq(status(request("DELETE", "/files/d")), 204, "without its '/' too");
    cr_expect_eq(status(request("DELETE", "/files/d/")), 404);
    cr_expect_eq(status(request("DELETE", "/files/keep.txt/")), 404, "a file named as a folder");
    cr_expect_eq(status(request("DELETE", "/files/")), 403);
    cr_expect(trash_empties_within(5000), "the trash still holds %s", trash().c_str());

    int fd = files_conn();
    cr_assert(t::send_all(fd, "PUT p/q/r.txt 1\nr"));
    cr_expect(t::read_line(fd).rfind("OK 1 ", 0) == 0);
    cr_expect_eq(cmd(fd, "DEL p/"), "OK");
    cr_expect_eq(cmd(fd, "DEL p/"), "ERR 404 not found");
    cr_expect_eq(cmd(fd, "DEL /"), "ERR 403 the top folder cannot be deleted");
    cr_expect_eq(cmd(fd, "LIST"), "OK 1");
    cr_expect(t::read_line(fd).rfind("keep.txt ", 0) == 0);
    close(fd);
    cr_expect(!exists("p"));
}

Test(e2e_folder_changes, a_kill_during_a_big_delete_leaves_the_folder_or_nothing) {
    std::string dir = t::make_memory_tmpdir();
    t::remove_at_teardown(dir);
    std::string data = dir + "/data";
    cr_assert(::mkdir(data.c_str(), 0755) == 0);
    // 10,000 files in 10 folders.
    cr_assert_eq(std::system(("cd '" + data +
                              "' && mkdir big && cd big && for d in 0 1 2 3 4 5 6 7 8 9; "
                              "do mkdir $d && (cd $d && seq 1 1000 | xargs touch); done")
                                 .c_str()),
                 0);
    cr_assert(t::start(g_srv, {}, data));
    int h = t::connect_port(g_srv.http_port);
    cr_assert(h >= 0);
    cr_assert(t::send_all(h, request("DELETE", "/files/big/")));
    // Killed at once, before or after the rename: never a half-deleted folder in sight.
    cr_assert_eq(t::stop(g_srv, 9), 128 + 9);
    close(h);
    bool whole = exists("big");
    if (whole) {
        std::string n = t::sh("find '" + data + "/big' -type f | wc -l");
        cr_expect_eq(std::atoi(n.c_str()), 10000, "a folder still visible is whole");
    }
    // The next start empties the trash and lists the folder or nothing.
    g_srv.err_log.clear();  // the next ready line is the new server's
    cr_assert(t::start(g_srv, {}, data));
    cr_expect(trash_empties_within(10000), "the trash still holds %s", trash().c_str());
    std::string top = t::body_of(http(request("GET", "/files/")));
    cr_expect_eq(top.find("\"big\"") != std::string::npos, whole, "%s", top.c_str());
    if (whole) cr_expect_eq(status(request("DELETE", "/files/big/")), 204);
    cr_expect(trash_empties_within(10000));
    cr_expect(!exists("big"));
}

Test(e2e_folder_changes, move_renames_files_and_folders_with_rfc_4918_statuses) {
    t::boot();
    cr_assert_eq(t::status_of(put("a/x.txt", "x")), 201);
    cr_assert_eq(t::status_of(put("b.txt", "b")), 201);
    cr_expect_eq(move_to("b.txt", "/files/a/b.txt"), 201);
    cr_expect(!exists("b.txt") && exists("a/b.txt"));
    cr_assert_eq(t::status_of(put("c.txt", "c")), 201);
    cr_expect_eq(move_to("c.txt", "/files/a/b.txt", "Overwrite: F\r\n"), 412);
    cr_expect_eq(move_to("c.txt", "/files/a/b.txt"), 204, "replaced");
    cr_expect_eq(t::read_file(g_srv.data_dir + "/a/b.txt"), "c");
    cr_expect_eq(move_to("a", "/files/z"), 201, "a folder");
    cr_expect_eq(t::body_of(http(request("GET", "/files/z/x.txt"))), "x");
    cr_expect_eq(status(request("GET", "/files/a/")), 404);
    cr_expect_eq(move_to("z/", "/files/z/inner"), 409, "into itself");
    cr_expect_eq(move_to("z/x.txt", "/files/none/x.txt"), 409, "missing parent");
    cr_expect_eq(move_to("nothing", "/files/n2"), 404);
    cr_expect_eq(move_to("z/x.txt", "http://elsewhere.example/files/q"), 400, "another server");
    cr_expect_eq(move_to("z/x.txt", "http://x/files/q.txt"), 201, "a URL naming this server");
    cr_expect_eq(move_to("q.txt", "/elsewhere/q.txt"), 400);
    cr_expect_eq(status(request("MOVE", "/files/q.txt")), 400, "no Destination");
    cr_expect_eq(status(request("MOVE", "/files/", "Destination: /files/r/\r\n")), 403);
    // If-Match on the source: only that version moves.
    std::string etag = "\"" + t::sha256_hex("x") + "\"";
    cr_expect_eq(move_to("q.txt", "/files/r.txt", "If-Match: \"00\"\r\n"), 412);
    cr_expect_eq(move_to("q.txt", "/files/r.txt", "If-Match: " + etag + "\r\n"), 201);
    // A folder over a folder: the old one goes to the trash.
    cr_assert_eq(t::status_of(put("old/o.txt", "o")), 201);
    cr_assert_eq(t::status_of(put("new/n.txt", "n")), 201);
    std::string r = http(request("MOVE", "/files/new", "Destination: /files/old\r\n"));
    if (t::status_of(r) != 204) t::wait_log(g_srv, "\x01", 1000);
    cr_expect_eq(t::status_of(r), 204, "%s\nserver: %s", r.c_str(), g_srv.err_log.c_str());
    cr_expect_eq(t::sh("ls '" + g_srv.data_dir + "/old' | tr '\\n' ' '"), "n.txt ");
    cr_expect(trash_empties_within(5000));

    int fd = files_conn();
    cr_expect_eq(cmd(fd, "MOVE r.txt s%20t.txt"), "OK");
    cr_expect_eq(cmd(fd, "MOVE s%20t.txt old/n.txt if=none"), "ERR 412 precondition failed");
    cr_expect_eq(cmd(fd, "MOVE s%20t.txt u.txt if=" + t::sha256_hex("nope")),
                 "ERR 412 precondition failed");
    cr_expect_eq(cmd(fd, "MOVE s%20t.txt u.txt if=" + t::sha256_hex("x")), "OK");
    cr_expect_eq(cmd(fd, "MOVE old/ z/old/"), "OK");
    cr_expect_eq(cmd(fd, "MOVE z/ z/old/in/"), "ERR 409 a folder cannot move into itself");
    cr_expect_eq(cmd(fd, "MOVE nothing x"), "ERR 404 not found");
    std::string listed = cmd(fd, "LIST -r");
    for (int i = 0; i < 3; ++i) listed += "|" + t::read_line(fd, 1000);
    std::string want = "OK 3|u.txt 1 " + t::sha256_hex("x") + "|z/b.txt 1 " + t::sha256_hex("c") +
                       "|z/old/n.txt 1 " + t::sha256_hex("n");
    cr_expect_eq(listed, want, "%s", listed.c_str());
    close(fd);
}

Test(e2e_folder_changes, move_with_overwrite_f_never_overwrites_a_racing_put) {
    t::boot();
    for (int round = 0; round < 100; ++round) {
        std::string src = "src" + std::to_string(round), dst = "dst" + std::to_string(round);
        cr_assert_eq(t::status_of(put(src, "moved")), 201);
        int put_status = 0, move_status = 0;
        std::thread writer([&] { put_status = t::status_of(put(dst, "written")); });
        move_status = move_to(src, "/files/" + dst, "Overwrite: F\r\n");
        writer.join();
        cr_assert(put_status == 201 || put_status == 200, "round %d: PUT %d", round, put_status);
        std::string now = t::read_file(g_srv.data_dir + "/" + dst);
        if (move_status == 201) {
            // The move came first; the PUT then replaced it (200) — never the reverse.
            cr_assert_eq(put_status, 200, "round %d", round);
            cr_assert_eq(now, "written");
        } else {
            cr_assert_eq(move_status, 412, "round %d: MOVE %d", round, move_status);
            cr_assert_eq(now, "written", "round %d: the PUT's bytes were overwritten", round);
            cr_assert(exists(src), "round %d: a refused move left its source", round);
        }
    }
}
