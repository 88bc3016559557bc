/* tmpdir_fixture.h: a fresh directory per test for the store tests, made by the suite's
 * .init and removed with everything in it by its .fini:
 *
 *   #define TMPDIR_PREFIX "vg_tsdb"
 *   #include "tmpdir_fixture.h"
 *   TestSuite(tsdb, .init = mkdir_tmp, .fini = rm_tmp);
 *
 * The directory's path is in `dir` (/tmp/<prefix>_XXXXXX). Include it once per test file. */
#ifndef TMPDIR_FIXTURE_H
#define TMPDIR_FIXTURE_H

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef TMPDIR_PREFIX
#error "define TMPDIR_PREFIX before including tmpdir_fixture.h"
#endif

static char dir[64];

static void mkdir_tmp(void)
{
    strcpy(dir, "/tmp/" TMPDIR_PREFIX "_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void rm_tmp(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

#endif
