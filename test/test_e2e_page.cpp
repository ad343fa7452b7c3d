// The page in a real browser (README "The page"): Debian's chromium, headless, driven by
// puppeteer-core (test/node/page_browser.js; test/deps.sh installs both), one scenario per test,
// each against its own duet, in its own browser context of one chromium shared by the scenarios.
// Screenshots (light and dark, desktop and 360 px) are saved under build/test-artifacts/.
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "helper.hpp"

namespace {

t::Duet& g_srv = t::served;
const char* kNodeModules = "build/npm/node_modules";

// Runs one scenario against a fresh duet; its JSON line is returned (and shown as a note).
std::string scenario(const std::string& name, std::vector<std::string> args = {},
                     const std::string& token = "") {
    int st = -1;
    t::sh(std::string("test -f ") + kNodeModules +
              "/puppeteer-core/package.json && command -v chromium",
          &st);
    cr_assert_eq(st, 0, "puppeteer-core or chromium is missing: run sh test/deps.sh");
    t::boot(std::move(args));
    char cwd[4096];
    cr_assert(::getcwd(cwd, sizeof cwd));
    std::string artifacts = std::string(cwd) + "/build/test-artifacts";
    std::string out = t::sh(
        "NODE_PATH=" + std::string(kNodeModules) + " timeout 150 node test/node/page_browser.js " +
            name + " " + std::to_string(g_srv.http_port) + " " + std::to_string(g_srv.files_port) +
            " '" + g_srv.data_dir + "' " + std::to_string(g_srv.pid) + " '" + artifacts + "' " +
            token + " 2>&1",
        &st);
    cr_assert_eq(st, 0, "page scenario %s failed: %s", name.c_str(), out.c_str());
    cr_assert(out.find("\"ok\":true") != std::string::npos, "%s", out.c_str());
    std::fprintf(stderr, "note: page %s: %s", name.c_str(), out.c_str());
    return out;
}

// The shared browser: `node page_browser.js serve`, started before the first scenario and told to
// close chromium (its standard input ends) after the last. The runner's hooks run before the
// tests' processes start, so they inherit DUET_BROWSER_WS. Without it (the browser did not
// start) each scenario starts its own, and says what went wrong.
pid_t g_browser = -1;
int g_browser_stdin = -1;

void start_shared_browser() {
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0) return;
    if (::pipe2(out, O_CLOEXEC) != 0) return (void)(::close(in[0]), ::close(in[1]));
    g_browser = ::fork();
    if (g_browser == 0) {
        ::dup2(in[0], 0), ::dup2(out[1], 1);
        ::execlp("sh", "sh", "-c",
                 (std::string("NODE_PATH=") + kNodeModules +
                  " exec node test/node/page_browser.js serve")
                     .c_str(),
                 static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ::close(in[0]), ::close(out[1]);
    g_browser_stdin = in[1];
    std::string line;
    char c;
    while (::read(out[0], &c, 1) == 1 && c != '\n') line += c;
    ::close(out[0]);
    if (line.rfind("ws://", 0) == 0) ::setenv("DUET_BROWSER_WS", line.c_str(), 1);
}

}  // namespace

ReportHook(PRE_ALL)(struct criterion_test_set*) {
    start_shared_browser();
}

ReportHook(POST_ALL)(struct criterion_global_stats*) {
    if (g_browser_stdin >= 0) ::close(g_browser_stdin);
    if (g_browser > 0) ::waitpid(g_browser, nullptr, 0);
}

TestSuite(e2e_page, .fini = t::teardown, .timeout = 180);

Test(e2e_page, browse_sort_filter_download_with_and_without_scripts) {
    scenario("browse");
}

Test(e2e_page, drop_three_files_and_a_folder_of_twenty) {
    scenario("drop");
}

Test(e2e_page, an_upload_survives_reloads_a_cut_and_a_page_reload) {
    scenario("survive");
}

Test(e2e_page, a_corrupted_piece_is_refused_and_reported) {
    scenario("mismatch");
}

Test(e2e_page, pause_resume_and_cancel) {
    scenario("controls");
}

Test(e2e_page, changes_by_anyone_appear_within_a_second) {
    scenario("live");
}

Test(e2e_page, the_token_is_asked_for_and_kept) {
    scenario("token", {"--token", "s3cret"}, "s3cret");
}

Test(e2e_page, new_folder_move_and_delete) {
    scenario("manage");
}

Test(e2e_page, upload_and_delete_by_keyboard_only) {
    scenario("keyboard");
}

Test(e2e_page, accessible_light_dark_phone_and_1000_entries_fast) {
    scenario("looks");
}

Test(e2e_page, stored_html_and_svg_never_render) {
    scenario("stored");
}
