/* FUZZ_CHECK: a property check in a fuzz target that holds in every build type (assert
 * vanishes under NDEBUG in release builds; a fuzz target's checks must not). */
#ifndef FUZZ_CHECK_H
#define FUZZ_CHECK_H

#define FUZZ_CHECK(cond)                                                                   \
    do {                                                                                   \
        if (!(cond))                                                                       \
            __builtin_trap();                                                              \
    } while (0)

#endif
