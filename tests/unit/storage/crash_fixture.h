/* crash_fixture: the kill -9 test the stores share (STYLE.md 18: "kill -9 between write
 * and acknowledgement"). A forked child opens the store and writes batch 0, 1, 2, ...
 * forever, reporting each batch's number on a pipe (crash_ack) only after the store
 * acknowledged it. The parent waits for a number of acknowledgements, SIGKILLs the child
 * at whatever point it has reached, reads the acknowledgements still in the pipe and
 * reaps the child. The test then reopens the store and checks that every acknowledged
 * batch is there whole and that no batch is there in part. Static inline: each test
 * file includes it once. */
#ifndef CRASH_FIXTURE_H
#define CRASH_FIXTURE_H

#include <criterion/criterion.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

/* In the child: reports batch i acknowledged by the store on wfd (the pipe crash_run
 * passes to the child). Exits the child with status 4 when the pipe fails. */
static inline void crash_ack(int wfd, int i)
{
    if (write(wfd, &i, sizeof i) != sizeof i)
        _exit(4);
}

/* Forks child(wfd), which opens the store and writes batches until it is killed, calling
 * crash_ack after each acknowledged one (and _exit with a status of its own choosing when
 * the store fails). SIGKILLs it once batch min_acked is acknowledged (or the child has
 * ended), then returns the number of the last batch acknowledged before the kill landed,
 * -1 for none. Fails the test when the child was not the one killed (it ended itself). */
static inline int crash_run(void (*child)(int wfd), int min_acked)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork");
    if (pid == 0) {
        close(p[0]);
        child(p[1]);
        _exit(5); /* the child writes until killed */
    }
    close(p[1]);
    int last = -1, got;
    while (last < min_acked && read(p[0], &got, sizeof got) == sizeof got)
        last = got;
    kill(pid, SIGKILL);
    while (read(p[0], &got, sizeof got) == sizeof got)
        last = got; /* acknowledged before the kill landed */
    close(p[0]);
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFSIGNALED(status), "child was killed, status %d", status);
    return last;
}

#endif
