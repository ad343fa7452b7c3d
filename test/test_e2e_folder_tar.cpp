// Black-box tests of README "Folders", a folder as one download: the tar's bytes extracted by the
// system's tar give the folder back byte for byte (nested, long names, an empty folder, UTF-8), its
// length is announced first and kept, both ports send the same bytes, a file changed under the
// stream cuts it rather than send other bytes, and a file over 8 GiB gets a pax size
// (bench/folder_tar.sh BIG_SPARSE=1 extracts one whole).
#include <criterion/criterion.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "helper.hpp"

namespace {

t::Duet& g_srv = t::served;

using t::request;
std::string http(const std::string& raw, bool head_only = false) {
    return t::http(g_srv.http_port, raw, head_only);
}
std::string put(const std::string& path, const std::string& body) {
    return http(request("PUT", "/files/" + path,
                        "Content-Length: " + std::to_string(body.size()) + "\r\n", body));
}
std::string url(const std::string& path) {
    return "http://127.0.0.1:" + std::to_string(g_srv.http_port) + path;
}

}  // namespace

TestSuite(e2e_folder_tar, .fini = t::teardown, .timeout = 90);

Test(e2e_folder_tar, tar_x_of_a_folder_download_gives_it_back_byte_for_byte) {
    std::string tmp = t::boot();
    std::string long_name = std::string(120, 'L') + ".txt";  // over ustar's 100 bytes
    std::string big = t::random_bytes(3 << 20, 7);
    std::vector<std::pair<std::string, std::string>> files = {
        {"docs/a.txt", "alpha"},
        {"docs/sub/deeper/b.bin", big},
        {"docs/sub/" + long_name, "long"},
        {"docs/na\xc3\xafve dir/c d.txt", "utf-8 and spaces"},
        {"docs/zero", ""},
        {"other/x", "not in the archive"},
    };
    for (auto& [path, data] : files) {
        std::string enc;
        for (unsigned char c : path)
            enc += (isalnum(c) || c == '/' || c == '.' || c == '_' || c == '-')
                       ? std::string(1, char(c))
                       : "%" + std::string(1, "0123456789ABCDEF"[c >> 4]) +
                             std::string(1, "0123456789ABCDEF"[c & 15]);
        cr_assert_eq(t::status_of(put(enc, data)), 201, "%s", path.c_str());
    }
    cr_assert_eq(t::status_of(http(request("MKCOL", "/files/docs/empty/"))), 201);

    // Headers first: the length is known, the name is the folder's.
    std::string head = http(request("HEAD", "/files/docs/?archive=tar"), true);
    cr_assert_eq(t::status_of(head), 200, "%s", head.c_str());
    cr_expect_eq(t::header_of(head, "Content-Type"), "application/x-tar");
    cr_expect(t::header_of(head, "Content-Disposition").find("filename=\"docs.tar\"") !=
                  std::string::npos,
              "%s", head.c_str());
    long announced = std::atol(t::header_of(head, "Content-Length").c_str());
    cr_assert_gt(announced, long(big.size()));

    std::string out = tmp + "/out";
    cr_assert(::mkdir(out.c_str(), 0755) == 0);
    int rc = -1;
    t::sh("curl -sS --max-time 30 -o '" + tmp + "/docs.tar' '" + url("/files/docs/?archive=tar") +
              "'",
          &rc);
    cr_assert_eq(rc, 0);
    struct stat st;
    cr_assert(::stat((tmp + "/docs.tar").c_str(), &st) == 0);
    cr_expect_eq(long(st.st_size), announced, "the promised length");
    std::string err = t::sh("cd '" + out + "' && tar -xf ../docs.tar 2>&1", &rc);
    cr_assert_eq(rc, 0, "tar -x: %s", err.c_str());
    // Member names are relative to the folder: no "./", no "docs/" prefix.
    std::string names = t::sh("tar -tf '" + tmp + "/docs.tar' | sort | tr '\\n' '|'");
    cr_expect(names.find("docs/") == std::string::npos && names.find("./") == std::string::npos,
              "%s", names.c_str());
    cr_expect(names.find("empty/|") != std::string::npos, "%s", names.c_str());
    std::string diff = t::sh("diff -r '" + g_srv.data_dir + "/docs' '" + out + "' 2>&1", &rc);
    cr_expect_eq(rc, 0, "extracted folder differs: %s", diff.c_str());

    // The file port sends the same bytes after its OK line; the top folder is files.tar.
    std::string port =
        t::sh("printf 'GET docs/\\n' | nc -N 127.0.0.1 " + std::to_string(g_srv.files_port) +
              " > '" + tmp + "/port.out'; " + "head -1 '" + tmp + "/port.out'; tail -c " +
              std::to_string(announced) + " '" + tmp + "/port.out' | cmp - '" + tmp +
              "/docs.tar' && echo same");
    cr_expect_eq(port, "OK " + std::to_string(announced) + " -\nsame\n", "%s", port.c_str());
    std::string top = http(request("HEAD", "/files/?archive=tar"), true);
    cr_expect(t::header_of(top, "Content-Disposition").find("filename=\"files.tar\"") !=
                  std::string::npos,
              "%s", top.c_str());
    cr_expect_eq(t::status_of(http(request("GET", "/files/nothing/?archive=tar"))), 404);
}

Test(e2e_folder_tar, a_file_changed_under_the_stream_cuts_it_never_other_bytes) {
    std::string tmp = t::boot();
    std::string first = t::random_bytes(2 << 20, 1);
    cr_assert_eq(t::status_of(put("f/1.bin", first)), 201);
    cr_assert_eq(t::status_of(put("f/2.bin", "original")), 201);
    // A slow reader: the stream is still in 1.bin when 2.bin changes.
    int fd = t::connect_slow_reader(g_srv.http_port, 16 << 10);
    cr_assert(fd >= 0);
    cr_assert(t::send_all(fd, request("GET", "/files/f/?archive=tar")));
    std::string got = t::read_n(fd, 64 << 10);
    cr_assert(got.rfind("HTTP/1.1 200", 0) == 0);
    long announced = std::atol(t::header_of(got, "Content-Length").c_str());
    cr_assert_eq(t::status_of(put("f/2.bin", "changed!!")), 200);
    got += t::read_all(fd, 30000);
    close(fd);
    std::size_t body = got.size() - (got.find("\r\n\r\n") + 4);
    cr_expect_lt(long(body), announced, "the download must be cut short");
    cr_expect(got.find("changed!!") == std::string::npos, "other bytes under the name");
    cr_expect(got.find("original") == std::string::npos, "the old bytes are gone from disk too");
}

Test(e2e_folder_tar, a_file_over_8_gib_gets_a_pax_size) {
    std::string dir = t::make_tmpdir();
    t::remove_at_teardown(dir);
    std::string data = dir + "/data";
    cr_assert(::mkdir(data.c_str(), 0755) == 0 && ::mkdir((data + "/v").c_str(), 0755) == 0);
    const std::uint64_t size = (std::uint64_t(8) << 30) + 3;  // sparse: no disk, no page cache
    int rc = -1;
    t::sh("truncate -s " + std::to_string(size) + " '" + data + "/v/huge.img'", &rc);
    cr_assert_eq(rc, 0);
    cr_assert(t::write_file(data + "/v/small.txt", "small"));
    cr_assert(t::start(g_srv, {}, data));
    // Its header is a pax size record before the ustar block (whose own size field cannot hold
    // it); the first blocks are enough to tell, so the 8 GiB themselves are not streamed here.
    int fd = t::connect_port(g_srv.http_port);
    cr_assert(fd >= 0);
    cr_assert(t::send_all(fd, request("GET", "/files/v/?archive=tar")));
    std::string head = t::read_n(fd, 8192);
    close(fd);
    std::size_t body = head.find("\r\n\r\n") + 4;
    std::uint64_t announced =
        std::strtoull(t::header_of(head, "Content-Length").c_str(), nullptr, 10);
    cr_expect_gt(announced, size, "the length counts the whole file");
    std::string tar = head.substr(body);
    cr_assert_geq(tar.size(), 3 * 512u);
    cr_expect_eq(tar[156], 'x', "a pax header first");
    std::string record = " size=" + std::to_string(size) + "\n";
    cr_expect(tar.substr(512, 512).find(record) != std::string::npos, "%s",
              tar.substr(512, 80).c_str());
    cr_expect_eq(tar.substr(1024, 8), "huge.img");
    cr_expect_eq(tar[1024 + 156], '0');
    (void)rc;
}

Test(e2e_folder_tar, a_folder_download_crosses_reloads_whole) {
    t::boot();
    std::string one = t::random_bytes(12 << 20, 11), two = t::random_bytes(4 << 20, 12);
    cr_assert_eq(t::status_of(put("r/one.bin", one)), 201);
    cr_assert_eq(t::status_of(put("r/two.bin", two)), 201);
    cr_assert_eq(t::status_of(put("r/s/three.txt", "three")), 201);
    std::string whole = t::body_of(http(request("GET", "/files/r/?archive=tar")));
    // A slow reader: the tar is in its first file at the first reload, further on at the second.
    int fd = t::connect_slow_reader(g_srv.http_port, 16 << 10);
    cr_assert(fd >= 0);
    cr_assert(t::send_all(fd, request("GET", "/files/r/?archive=tar")));
    std::string got = t::read_n(fd, 128 << 10);
    cr_assert(t::reload_and_wait(g_srv), "%s", g_srv.err_log.c_str());
    got += t::read_n(fd, 8 << 20);
    cr_assert(t::reload_and_wait(g_srv), "%s", g_srv.err_log.c_str());
    std::size_t body = got.find("\r\n\r\n") + 4;
    std::size_t announced = std::strtoul(t::header_of(got, "Content-Length").c_str(), nullptr, 10);
    cr_assert_eq(announced, whole.size());
    got += t::read_n(fd, body + announced - got.size(), 30000);  // a keep-alive: it stays open
    close(fd);
    cr_expect_eq(got.size() - body, whole.size(), "the promised length, across two reloads");
    cr_expect(got.substr(body) == whole, "the same bytes as a download without a reload");
    // The file port's tar crosses a reload too.
    int p = t::files_conn(g_srv);
    cr_assert(t::send_all(p, "GET r/\n"));
    std::string line = t::read_line(p);
    cr_expect_eq(line, "OK " + std::to_string(whole.size()) + " -");
    std::string bytes = t::read_n(p, 64 << 10);
    cr_assert(t::reload_and_wait(g_srv));
    bytes += t::read_n(p, whole.size() - bytes.size(), 30000);
    close(p);
    cr_expect(bytes == whole, "%zu of %zu bytes", bytes.size(), whole.size());
}
