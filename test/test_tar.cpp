// The tar headers of README "Folders" (store/tar_stream.hpp), checked against the format: ustar
// fields and checksum, pax records whose length counts itself, and the length promised up front
// equal to the bytes the stream gives.
#include <criterion/criterion.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "duet/store/tar_stream.hpp"

using duet::TarEntry;

namespace {

unsigned long octal_field(const std::string& h, std::size_t at, std::size_t width) {
    return std::strtoul(h.substr(at, width).c_str(), nullptr, 8);
}

unsigned checksum_of(std::string h) {
    for (std::size_t i = 148; i < 156; ++i) h[i] = ' ';
    unsigned sum = 0;
    for (unsigned char c : h.substr(0, 512)) sum += c;
    return sum;
}

}  // namespace

Test(tar, a_short_entry_is_one_ustar_block_with_a_right_checksum) {
    TarEntry e{"dir/a.txt", "x/dir/a.txt", 1234, 1700000000LL * 1000000000, false};
    std::string h = duet::tar_header(e);
    cr_assert_eq(h.size(), 512u);
    cr_expect_eq(h.substr(0, 9), "dir/a.txt");
    cr_expect_eq(h.substr(257, 6), std::string("ustar\0", 6));
    cr_expect_eq(h.substr(263, 2), "00");
    cr_expect_eq(h[156], '0');
    cr_expect_eq(octal_field(h, 124, 12), 1234u);
    cr_expect_eq(octal_field(h, 136, 12), 1700000000u);
    cr_expect_eq(octal_field(h, 148, 8), checksum_of(h));
    TarEntry d{"dir/", "x/dir", 0, 0, true};
    cr_expect_eq(duet::tar_header(d)[156], '5');
}

Test(tar, long_names_and_huge_sizes_get_a_pax_header) {
    std::string name(150, 'n');
    TarEntry e{name, name, (std::uint64_t(9) << 30), 0, false};
    std::string h = duet::tar_header(e);
    cr_assert_eq(h.size(), 3 * 512u);  // pax header, its records, the entry
    cr_expect_eq(h[156], 'x');
    std::size_t records = octal_field(h, 124, 12);
    std::string data = h.substr(512, records);
    // Each record: "LEN key=value\n", LEN counting the whole record.
    for (std::size_t at = 0; at < data.size();) {
        std::size_t len = std::strtoul(data.c_str() + at, nullptr, 10);
        cr_assert(len > 0 && at + len <= data.size());
        cr_expect_eq(data[at + len - 1], '\n');
        at += len;
    }
    cr_expect(data.find(" path=" + name + "\n") != std::string::npos, "%s", data.c_str());
    cr_expect(data.find(" size=" + std::to_string(std::uint64_t(9) << 30) + "\n") !=
              std::string::npos);
    cr_expect_eq(octal_field(h, 1024 + 148, 8), checksum_of(h.substr(1024)));
}

Test(tar, the_promised_length_is_what_the_stream_gives) {
    char dir[] = "/tmp/duet-tar-XXXXXX";
    cr_assert(mkdtemp(dir));
    std::string root = dir;
    cr_assert(::mkdir((root + "/d").c_str(), 0755) == 0);
    int f = ::open((root + "/d/f").c_str(), O_WRONLY | O_CREAT, 0644);
    cr_assert(f >= 0 && ::write(f, "hello", 5) == 5);
    struct stat st;
    cr_assert(::fstat(f, &st) == 0);
    ::close(f);
    std::int64_t mtime = std::int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    std::vector<TarEntry> entries = {{"d/", "d", 0, 0, true}, {"d/f", "d/f", 5, mtime, false}};
    int rootfd = ::open(dir, O_RDONLY | O_DIRECTORY);
    duet::TarStream tar(rootfd, entries);
    std::string out;
    char buf[700];
    for (int guard = 0; !tar.done() && guard < 100; ++guard) {
        out.append(buf, tar.fill(buf, sizeof buf));
        duet::Fd file;
        off_t off = 0;
        std::uint64_t len = 0;
        if (tar.take_file(file, off, len)) {
            std::string bytes(len, '\0');
            cr_assert_eq(::pread(file.get(), bytes.data(), len, off), ssize_t(len));
            out += bytes;
        }
        cr_assert(!tar.failed());
    }
    cr_expect(tar.done());
    cr_expect_eq(out.size(), tar.length());
    cr_expect_eq(out.size(), 512u + 512u + 512u + 1024u);
    cr_expect_eq(out.substr(1024, 5), "hello");
    ::close(rootfd);
    std::system(("rm -rf '" + root + "'").c_str());
}
