// Linked into the black-box drivers only (Makefile): they test the server over sockets, and
// the server they start already runs with leak checks off (helper_server.cpp). A leak check at
// the exit of each of their forked tests found nothing in them and cost a fifth of their CPU
// time. The unit tests, which run duet's own code in process, keep it.
extern "C" const char* __asan_default_options() {
    return "detect_leaks=0";
}
