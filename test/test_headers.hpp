// What the test drivers parse ahead as a precompiled header (see the Makefile): duet's common
// standard headers, Criterion's, and those the black-box helpers use.
#include <criterion/criterion.h>

#include <filesystem>
#include <random>
#include <set>

#include "duet/core/std_headers.hpp"
