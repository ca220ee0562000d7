/* The container root as an attacker of `lxcprov exec` (tests/root/enter.rs builds it
 * statically and copies it into a busybox container).
 *
 *   attacker watch SECONDS LOG   for SECONDS, every new process of the container's PID
 *                                namespace is attacked as it is born the way runc's CVEs were: PTRACE_SEIZE,
 *                                its /proc/PID/{exe,cwd,root,fd/*} opened, its capabilities
 *                                read ("SEIZED" only while it is still lxcprov). One line per finding goes to LOG ("SEIZED", "EXE",
 *                                "EXE-WRITABLE", "CWD-OUTSIDE", "ROOT-OUTSIDE", "HOSTFD",
 *                                "CAPS"); a line "seen N" at the end, when SECONDS have
 *                                passed or a file /stop exists.
 *   attacker tiocsti             pushes "echo PWNED" + newline into fds 0-2 and /dev/tty with
 *                                TIOCSTI (and the same ioctl with bit 32 set), prints results.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static FILE *logf;
static struct stat rootst;

static void finding(const char *what, int pid, const char *detail) {
    fprintf(logf, "%s %d %s\n", what, pid, detail ? detail : "");
    fflush(logf);
}

static void outside(int pid, const char *which, const char *tag) {
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/%s", pid, which);
    int fd = open(p, O_PATH | O_DIRECTORY);
    if (fd < 0) return;
    struct stat st;
    if (fstat(fd, &st) == 0 && (st.st_dev != rootst.st_dev || st.st_ino != rootst.st_ino)) {
        /* Its cwd or root is not the container's root: is it even inside the container? */
        char link[512] = {0};
        readlink(p, link, sizeof link - 1);
        /* A directory of the container is fine; one we cannot reach from our root is not. */
        int inside = 0;
        if (link[0] == '/') {
            struct stat mine;
            inside = stat(link, &mine) == 0 && mine.st_dev == st.st_dev && mine.st_ino == st.st_ino;
        }
        if (!inside) finding(tag, pid, link);
    }
    close(fd);
}

static void attack(int pid) {
    char p[64], link[512];
    if (ptrace(PTRACE_SEIZE, pid, 0, 0) == 0) {
        /* Stop it, then let it go (a seized tracee that exits would wait for us). Seizing a
         * process exec has already turned into the command is the container's right;
         * seizing lxcprov before that is the finding. */
        int st;
        if (ptrace(PTRACE_INTERRUPT, pid, 0, 0) == 0 && waitpid(pid, &st, __WALL) == pid && WIFSTOPPED(st)) {
            snprintf(p, sizeof p, "/proc/%d/exe", pid);
            ssize_t k = readlink(p, link, sizeof link - 1);
            link[k > 0 ? k : 0] = 0;
            if (strstr(link, "lxcprov")) finding("SEIZED", pid, link);
            ptrace(PTRACE_DETACH, pid, 0, 0);
        }
    }
    snprintf(p, sizeof p, "/proc/%d/exe", pid);
    ssize_t n = readlink(p, link, sizeof link - 1);
    if (n > 0) {
        link[n] = 0;
        if (strstr(link, "lxcprov") && !strstr(link, "memfd:")) finding("EXE", pid, link);
        int w = open(p, O_WRONLY | O_APPEND);
        if (w >= 0) {
            /* Never write: opening it for writing is the finding. */
            finding("EXE-WRITABLE", pid, link);
            close(w);
        }
    }
    outside(pid, "cwd", "CWD-OUTSIDE");
    outside(pid, "root", "ROOT-OUTSIDE");
    snprintf(p, sizeof p, "/proc/%d/fd", pid);
    DIR *d = opendir(p);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            char fp[128];
            snprintf(fp, sizeof fp, "/proc/%d/fd/%s", pid, e->d_name);
            n = readlink(fp, link, sizeof link - 1);
            if (n <= 0) continue;
            link[n] = 0;
            if (!strncmp(link, "socket:", 7) || !strncmp(link, "pipe:", 5) || !strncmp(link, "anon_inode:", 11) ||
                !strncmp(link, "/dev/", 5) || !strncmp(link, "/memfd:", 7))
                continue;
            /* Anything else must be a file of the container's own tree. */
            struct stat a, b;
            if (stat(fp, &a) != 0) continue; /* gone meanwhile */
            /* Terminals and other devices are the container's (its console is a pty whose
             * devpts is not mounted where the attacker looks); files and directories matter. */
            if (!S_ISREG(a.st_mode) && !S_ISDIR(a.st_mode)) continue;
            if (stat(link, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) continue;
            char comm[64] = {0}, cp[64];
            snprintf(cp, sizeof cp, "/proc/%d/comm", pid);
            int c = open(cp, O_RDONLY);
            if (c >= 0) { read(c, comm, sizeof comm - 1); close(c); }
            comm[strcspn(comm, "\n")] = 0;
            char detail[700];
            snprintf(detail, sizeof detail, "fd %s -> %s (%s)", e->d_name, link, comm);
            finding("HOSTFD", pid, detail);
        }
        closedir(d);
    }
    snprintf(p, sizeof p, "/proc/%d/status", pid);
    FILE *f = fopen(p, "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f)) {
            if ((!strncmp(line, "CapInh:", 7) || !strncmp(line, "CapAmb:", 7)) && !strstr(line, "0000000000000000")) {
                line[strcspn(line, "\n")] = 0;
                finding("CAPS", pid, line);
            }
        }
        fclose(f);
    }
}

static int last_pid(void) {
    char b[32] = {0};
    int fd = open("/proc/sys/kernel/ns_last_pid", O_RDONLY);
    if (fd < 0) return -1;
    read(fd, b, sizeof b - 1);
    close(fd);
    return atoi(b);
}

/* PIDs in a PID namespace are handed out in order: the next process exec puts here will
 * be ns_last_pid + 1, so the attacker waits for it there instead of scanning /proc (a
 * /bin/true lives for a millisecond). */
static int watch(int seconds, const char *log) {
    logf = fopen(log, "a");
    if (!logf) return 2;
    stat("/", &rootst);
    static unsigned char seen[1 << 22];
    int me = getpid(), count = 0;
    time_t end = time(NULL) + seconds;
    unsigned long spins = 0;
    while (time(NULL) < end) {
        if ((++spins & 1023) == 0 && access("/stop", F_OK) == 0) break;
        int last = last_pid();
        if (last < 0) return 2;
        for (int pid = last - 2; pid <= last + 2; pid++) {
            if (pid <= 1 || pid == me || pid >= (1 << 22) || seen[pid]) continue;
            char p[64];
            snprintf(p, sizeof p, "/proc/%d/stat", pid);
            if (access(p, F_OK) != 0) continue;
            seen[pid] = 1;
            count++;
            attack(pid);
        }
    }
    fprintf(logf, "seen %d\n", count);
    fclose(logf);
    return 0;
}

static void push(const char *name, int fd) {
    const char *s = "echo PWNED\n";
    int ok = 0, ok64 = 0;
    for (const char *c = s; *c; c++) {
        if (ioctl(fd, TIOCSTI, c) == 0) ok++;
        if (syscall(SYS_ioctl, fd, 0x100000000UL | TIOCSTI, c) == 0) ok64++;
    }
    printf("%s: TIOCSTI %d/%zu, 64-bit %d/%zu (%s)\n", name, ok, strlen(s), ok64, strlen(s), strerror(errno));
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "watch")) return watch(atoi(argv[2]), argv[3]);
    if (argc == 2 && !strcmp(argv[1], "tiocsti")) {
        push("fd0", 0);
        push("fd1", 1);
        push("fd2", 2);
        int t = open("/dev/tty", O_RDWR | O_NOCTTY);
        if (t >= 0) push("/dev/tty", t);
        else printf("/dev/tty: %s\n", strerror(errno));
        fflush(stdout);
        return 0;
    }
    fprintf(stderr, "usage: attacker watch SECONDS LOG | attacker tiocsti\n");
    return 2;
}
