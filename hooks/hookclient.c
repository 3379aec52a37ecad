/* SPDX-License-Identifier: MIT */
/* hookclient: gitswarm/hookclient.py's ask_guard in C, built by `gitswarm init` into
 * <hub>/gitswarm/hookclient (gitswarm/hookbuild.py). Every push waits for the pre-receive hook, and
 * a Python start (6-7 ms, more under load) is most of what it costs when the resident guard
 * (gitswarm/guardserver.py) does the checking: this starts in about a millisecond.
 *
 *     hookclient <hook-name> <fallback command...>
 *     hookclient post-receive <variable...> -- <hook arguments...>
 *     hookclient --shim hooks/<hook-name> <hook arguments...>
 *
 * The second form is hooks/post-receive's bash in C (no bash start, no mv process): see post_receive.
 * The third is the kernel's, when the client is a shim's interpreter (`#!gitswarm/hookclient --shim`,
 * gitswarm/install.py; relative to the hub, where git runs push hooks): no shell starts before it.
 * It is the first form with `/bin/sh hooks/<hook-name> <hook arguments...>` as the fallback (the
 * shim's own lines, run by sh, check in process), or the second with the variables init built in.
 *
 * It hands the hook to the guard exactly as hookclient.py does (same request, same checks) and exits
 * with the guard's `exit <code>` answer. Anything else is no answer, and then it execs the fallback
 * (the Python shim's own command line, which checks in process) with the hook's stdin as it came:
 * a push is never accepted unchecked. proc-receive talks pkt-lines on stdin/stdout while it runs, so
 * it is passed live (fds 0, 1, 2) and not read here; once it was sent, only the guard can answer. */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#ifndef GITSWARM_PUSHER_VARIABLES
#define GITSWARM_PUSHER_VARIABLES ""  /* gitswarm/identity.py VARIABLES, space-separated: hookbuild.py fills them in */
#endif
#ifndef GITSWARM_BUILD
#define GITSWARM_BUILD "unstamped"  /* gitswarm/hookbuild.py stamps what built it, to rebuild when it changed */
#endif
#define LOOSE_IN_17 27         /* git's estimate of gc.auto's 6,700 loose objects: 6,700 / 256 in objects/17 */
#define PACKS 50              /* gc.autoPackLimit's default */
#define CONNECT_SECONDS 5     /* as hookclient.CONNECT_SECONDS: also bounds each send */
#define ANSWER_SECONDS 300    /* git has no hook timeout; a wedged guard must not hold a push for ever */

struct buf { char *p; size_t len, cap; };

static int put(struct buf *b, const void *s, size_t n) {
    if (n > ((size_t)-1) / 2 - b->len) return errno = ENOMEM, -1;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return errno = ENOMEM, -1;
        b->p = p, b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    return 0;
}

static int put_field(struct buf *b, const char *s) { return put(b, s, strlen(s) + 1); }

/* The head hookclient.request writes: name, folder, umask (octal), count, KEY=VALUE..., each NUL-ended.
 * Of a name given twice the first wins, as in Python's os.environb (the guard would take the last);
 * entries with no `=` after their first byte are left out (the guard refuses a request with one). */
static int head(struct buf *b, const char *name) {
    char num[32];
    size_t size = 256, count = 0;
    char *cwd = NULL, *grown;
    for (;;) {
        if (!(grown = realloc(cwd, size))) { free(cwd); return -1; }
        if (getcwd(cwd = grown, size)) break;
        if (errno != ERANGE || size > (1u << 20)) { free(cwd); return -1; }
        size *= 2;
    }
    mode_t mask = umask(022);
    umask(mask);
    int bad = put_field(b, name) || put_field(b, cwd);
    free(cwd);
    snprintf(num, sizeof num, "%o", (unsigned)mask);
    if (bad || put_field(b, num)) return -1;
    struct buf env = {0};
    for (char **e = environ; *e; e++) {
        const char *eq = **e ? strchr(*e + 1, '=') : NULL;
        int dup = 0;
        for (char **f = environ; eq && f < e && !dup; f++)
            dup = strncmp(*f, *e, (size_t)(eq - *e) + 1) == 0;
        if (!eq || dup) continue;
        if (put_field(&env, *e)) { free(env.p); return -1; }
        count++;
    }
    snprintf(num, sizeof num, "%zu", count);
    bad = put_field(b, num) || put(b, env.p, env.len);
    free(env.p);
    return bad ? -1 : 0;
}

/* sendmsg the iovecs whole, the fds riding on the first call; partial sends and EINTR go on.
 * *sent turns 1 once any byte (and so the fds) left. */
static int send_all(int sock, struct iovec *iov, int n, const int *fds, int nfds, int *sent) {
    union { char buf[CMSG_SPACE(3 * sizeof(int))]; struct cmsghdr align; } ctl;
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    memset(&ctl, 0, sizeof ctl);
    msg.msg_control = ctl.buf;
    msg.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET, c->cmsg_type = SCM_RIGHTS, c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
    memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
    while (msg.msg_iovlen) {
        ssize_t done = sendmsg(sock, &msg, MSG_NOSIGNAL);  /* a dead guard: EPIPE, not SIGPIPE */
        if (done < 0 && errno == EINTR) continue;
        if (done < 0) return -1;
        *sent = 1;
        msg.msg_control = NULL, msg.msg_controllen = 0;
        size_t left = (size_t)done;
        for (; msg.msg_iovlen && left >= msg.msg_iov->iov_len; msg.msg_iovlen--, msg.msg_iov++)
            left -= msg.msg_iov->iov_len;
        if (msg.msg_iovlen) {
            msg.msg_iov->iov_base = (char *)msg.msg_iov->iov_base + left;
            msg.msg_iov->iov_len -= left;
        }
    }
    return 0;
}

/* The guard's exit code, or -1 when there is no whole answer; *sent says whether the request left. */
static int ask_guard(const char *name, const struct buf *data, int live, int *sent) {
    static const int fds[3] = {0, 1, 2};
    const char *git_dir = getenv("GIT_DIR") ? getenv("GIT_DIR") : ".";
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    struct stat hub;
    struct ucred peer;
    socklen_t len = sizeof peer;
    struct timeval wait = {CONNECT_SECONDS, 0};
    struct timespec now, end;
    struct buf req = {0};
    char magic[64], answer[128];
    size_t got = 0;
    int code = -1, sock = -1;
    /* another account's push: the guard (the hub owner's) will not take it */
    if (stat(git_dir, &hub) || hub.st_uid != getuid()) return -1;
    if ((size_t)snprintf(addr.sun_path, sizeof addr.sun_path, "%s/gitswarm/guard.sock", git_dir)
        >= sizeof addr.sun_path) return -1;
    if ((sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) return -1;
    /* SO_SNDTIMEO bounds a unix socket's connect (a full backlog) and each send */
    if (setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &wait, sizeof wait)) goto out;
    while (connect(sock, (struct sockaddr *)&addr, sizeof addr))
        if (errno != EINTR) goto out;  /* no socket, refused (a guard that died), timed out */
    /* a socket planted by another account (a shared hub's gitswarm/ is group-writable) */
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &peer, &len) || len != sizeof peer || peer.uid != hub.st_uid)
        goto out;
    if (head(&req, name)) goto out;
    snprintf(magic, sizeof magic, "gitswarm-guard-1 %zu:", req.len);
    struct iovec iov[3] = {{magic, strlen(magic)}, {req.p, req.len}, {data->p, data->len}};
    if (send_all(sock, iov, data->len ? 3 : 2, live ? fds : fds + 1, live ? 3 : 2, sent)) goto out;
    if (shutdown(sock, SHUT_WR)) goto out;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += ANSWER_SECONDS;
    /* to its line's end, as hookclient.py (a half answer is no answer), not to the connection's:
       the guard's child closes the hook's pipes before it answers, and its exit is not waited for */
    while (got < 64 && (got == 0 || answer[got - 1] != '\n')) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        long ms = (long)(end.tv_sec - now.tv_sec) * 1000 + (end.tv_nsec - now.tv_nsec) / 1000000;
        struct pollfd p = {sock, POLLIN, 0};
        int ready = ms > 0 ? poll(&p, 1, (int)ms) : 0;
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) goto out;  /* timed out, or poll failed */
        ssize_t n = recv(sock, answer + got, 64, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) goto out;  /* reset: the guard died */
        if (n == 0) break;
        got += (size_t)n;
    }
    /* `exit <digits>\n` whole; a code git could not see as given (over 255) is no answer either */
    if (got < 7 || memcmp(answer, "exit ", 5) || answer[got - 1] != '\n') goto out;
    code = 0;
    for (size_t i = 5; i < got - 1 && code >= 0; i++)
        code = answer[i] >= '0' && answer[i] <= '9' && code * 10 + (answer[i] - '0') <= 255
               ? code * 10 + (answer[i] - '0') : -1;
out:
    free(req.p);
    close(sock);
    return code;
}

/* A whole `<old> <new> <ref>` line of refs/for/ (names.APPLY), ids in lowercase hex: ends at `end`. */
static int applied_line(const char *p, const char *end) {
    for (int field = 0; field < 2; field++) {
        const char *id = p;
        while (p < end && ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) p++;
        if ((p - id != 40 && p - id != 64) || p == end || *p != ' ') return 0;
        p++;
    }
    if ((size_t)(end - p) <= strlen("refs/for/") || memcmp(p, "refs/for/", strlen("refs/for/"))) return 0;
    for (; p < end; p++)
        if ((unsigned char)*p <= ' ') return 0;
    return 1;
}

/* Whether <hub>/config says, in a line written as `gitswarm init` writes it, that git hands
 * refs/for/ to proc-receive: `procReceiveRefs = refs/for` in a `[receive]` section. Strict: a line
 * written any other way, or a file with a continued line (a backslash at a line's end), is no. */
static int hub_applies(const char *git_dir) {
    struct buf path = {0}, text = {0};
    char chunk[8192];
    int yes = 0, in_receive = 0, fd = -1;
    if (put(&path, git_dir, strlen(git_dir)) || put_field(&path, "/config")) goto out;
    if ((fd = open(path.p, O_RDONLY | O_CLOEXEC)) < 0) goto out;
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 || text.len + (size_t)n > (1 << 20) || put(&text, chunk, (size_t)n)) goto out;
        if (n == 0) break;
    }
    if (memchr(text.p ? text.p : "", '\0', text.len)) goto out;
    int found = 0;
    for (size_t i = 0; i < text.len;) {
        char *line = text.p + i, *nl = memchr(line, '\n', text.len - i);
        char *end = nl ? nl : text.p + text.len;
        i = (size_t)(end - text.p) + 1;
        while (end > line && isspace((unsigned char)end[-1])) end--;
        if (end > line && end[-1] == '\\') { found = 0; break; }  /* a continued line: no */
        while (line < end && isspace((unsigned char)*line)) line++;
        if (line < end && *line == '[') {
            in_receive = end - line == 9 && !strncasecmp(line, "[receive]", 9);
            continue;
        }
        static const char key[] = "procReceiveRefs";
        if (!in_receive || (size_t)(end - line) < sizeof key || strncasecmp(line, key, sizeof key - 1)) continue;
        const char *p = line + sizeof key - 1;
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        if (p == end || *p++ != '=') continue;
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        if (end - p == 8 && !memcmp(p, "refs/for", 8)) found = 1;
    }
    yes = found;
out:
    if (fd >= 0) close(fd);
    free(path.p);
    free(text.p);
    return yes;
}

/* A push that only names refs/for/ refs, on a hub that applies them: its pre-receive has nothing to
 * check (gitswarm/hookimpl.py's check lets them by on such a hub; proc-receive checks what it
 * applies), so no guard is asked and no Python starts. Any doubt (another line, a legacy hook to
 * run, a config line written otherwise) asks the guard as every other push does. */
static int only_applied(const char *name, const struct buf *data) {
    const char *git_dir = getenv("GIT_DIR") ? getenv("GIT_DIR") : ".";
    char legacy[4096];
    if (strcmp(name, "pre-receive") || !data->len || data->p[data->len - 1] != '\n') return 0;
    for (size_t i = 0; i < data->len;) {
        const char *line = data->p + i, *end = memchr(line, '\n', data->len - i);
        if (!applied_line(line, end)) return 0;
        i = (size_t)(end - data->p) + 1;
    }
    if ((size_t)snprintf(legacy, sizeof legacy, "%s/hooks/pre-receive.legacy", git_dir) >= sizeof legacy) return 0;
    if (!access(legacy, F_OK)) return 0;
    return hub_applies(git_dir);
}

static int write_all(int fd, const char *p, size_t len) {
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        p += n, len -= (size_t)n;
    }
    return 0;
}

/* stdin for the fallback: the bytes already read, in a memory file (or an unlinked temp file). */
static int refill_stdin(const struct buf *data) {
    int fd = memfd_create("gitswarm-hook-stdin", MFD_CLOEXEC);
    if (fd < 0) {
        const char *tmp = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        struct buf path = {0};
        if (put(&path, tmp, strlen(tmp)) || put_field(&path, "/gitswarm-hook-XXXXXX")) return -1;
        fd = mkstemp(path.p);
        if (fd >= 0) unlink(path.p);
        free(path.p);
        if (fd < 0) return -1;
    }
    if (write_all(fd, data->p, data->len)) return close(fd), -1;
    if (lseek(fd, 0, SEEK_SET) || dup2(fd, 0) < 0) return close(fd), -1;
    close(fd);
    return 0;
}

/* A variable's value as bash sees it: of a name given twice, the last (getenv gives the first). */
static const char *shell_value(const char *name) {
    size_t n = strlen(name);
    const char *value = NULL;
    for (char **e = environ; *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') value = *e + n + 1;
    return value;
}

/* hooks/post-receive's bash, byte for byte (tests/test_hookclient_c.py compares the two): in
 * ${GIT_DIR:-.}, with umask 022, the record gitswarm/spool/<µs>-<pid>.push holding
 * `gitswarm-push-1`, NAME=VALUE for each of the shim's variables that is set (gitswarm/identity.py
 * VARIABLES, filled into the shim by init), each NUL-ended, a NUL, then git's lines as bash's `read`
 * leaves them (NUL bytes dropped, a last line ended). Written as <name>.tmp, then renamed. Then
 * hooks/post-receive.legacy, when executable, with those lines on its stdin and the hook's
 * arguments; then `git gc --auto` when due (pack_when_due; bash runs it every time). Exits 0
 * whatever happens: git ignores a post-receive's status, and the push stands. */
/* How many entries of `dir` have a name `len` long (0: any) ending in `suffix`, counted up to most + 1. */
static int entries(const char *dir, size_t len, const char *suffix, int most) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && n <= most && (e = readdir(d))) {
        size_t l = strlen(e->d_name);
        n += (!len || l == len) && l >= strlen(suffix) && !strcmp(e->d_name + l - strlen(suffix), suffix)
             && e->d_name[0] != '.';
    }
    if (d) closedir(d);
    return n;
}

/* `git gc --auto`, which init keeps out of every push (receive.autoGC false: receive-pack started one
 * after each push, ~1.5 ms): started here only when git's own estimate at its defaults finds work
 * (more than 27 loose objects in objects/17, or 50 packs), and waited for as receive-pack waits;
 * gc then decides as configured (gc.auto, gc.autoPackLimit, gc.autoDetach). In the hub's folder. */
static void pack_when_due(void) {
    if (entries("objects/17", 38, "", LOOSE_IN_17) <= LOOSE_IN_17 && entries("objects/pack", 0, ".pack", PACKS) <= PACKS)
        return;
    pid_t child = fork();
    if (child == 0) {
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0) dup2(null, 0);
        dup2(2, 1);  /* as receive-pack runs it: what it says goes where the hook's errors go */
        execlp("git", "git", "gc", "--auto", "--quiet", (char *)NULL);
        fprintf(stderr, "gitswarm: cannot run git gc --auto: %s\n", strerror(errno));
        _exit(127);
    }
    while (child > 0 && waitpid(child, NULL, 0) < 0 && errno == EINTR) {}
}

static int post_receive(int argc, char **argv) {
    struct buf lines = {0}, record = {0};
    char chunk[65536], name[128], tmp[136];
    const char *what = "reading the hook's input";
    int vars = 0, fd = -1, bad = 0;
    while (vars < argc && strcmp(argv[vars], "--")) vars++;
    if (vars == argc) {
        fputs("gitswarm: could not spool the event: hookclient post-receive: no -- among its arguments\n", stderr);
        return 0;
    }
    umask(022);
    setenv("LC_ALL", "C", 1);  /* as the script exports it, for the legacy hook */
    const char *git_dir = getenv("GIT_DIR") && *getenv("GIT_DIR") ? getenv("GIT_DIR") : ".";
    if (chdir(git_dir)) return 0;  /* as the script: `cd "${GIT_DIR:-.}" || exit 0` */
    for (;;) {  /* git's lines: any size, in a buffer that grows */
        ssize_t n = read(0, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;  /* a read error ends the input, as it ends bash's `read` */
        for (ssize_t i = 0, from = 0; i <= n && !bad; i++)
            if (i == n || chunk[i] == '\0') {  /* bash's `read` drops NUL bytes */
                bad = put(&lines, chunk + from, (size_t)(i - from));
                from = i + 1;
            }
        if (bad) break;
    }
    if (!bad && lines.len && lines.p[lines.len - 1] != '\n') bad = put(&lines, "\n", 1);
    struct timeval now;
    gettimeofday(&now, NULL);  /* bash's EPOCHREALTIME, its point taken out */
    snprintf(name, sizeof name, "gitswarm/spool/%lu%06lu-%ld.push", (unsigned long)now.tv_sec,
             (unsigned long)now.tv_usec, (long)getpid());
    snprintf(tmp, sizeof tmp, "%s.tmp", name);
    if (!bad) {
        what = "writing the record";
        bad = put(&record, "gitswarm-push-1", 16);
        for (int i = 0; i < vars && !bad; i++) {
            const char *value = shell_value(argv[i]);
            if (value)
                bad = put(&record, argv[i], strlen(argv[i])) || put(&record, "=", 1) || put_field(&record, value);
        }
        bad = bad || put(&record, "", 1) || put(&record, lines.p, lines.len);
    }
    /* a name of its own (O_EXCL, O_NOFOLLOW): a shared hub's spool is writable by every member */
    if (!bad && (fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666)) < 0)
        bad = 1, what = tmp;
    if (!bad && (write_all(fd, record.p, record.len) | close(fd)))
        bad = 1, what = tmp, unlink(tmp);
    if (!bad && rename(tmp, name))
        bad = 1, what = name, unlink(tmp);
    if (bad)
        fprintf(stderr, "gitswarm: could not spool the event: %s: %s\n", what, strerror(errno));
    free(record.p);
    if (access("hooks/post-receive.legacy", X_OK) == 0) {
        argv[vars] = "hooks/post-receive.legacy";  /* in the place of --, before the hook's arguments */
        pid_t child = -1;
        if (refill_stdin(&lines) || (child = fork()) < 0)
            perror("gitswarm: running hooks/post-receive.legacy");
        if (child == 0) {
            execvp(argv[vars], argv + vars);  /* execvp: a script with no #! runs under /bin/sh */
            fprintf(stderr, "gitswarm: cannot run hooks/post-receive.legacy: %s\n", strerror(errno));
            _exit(126);
        }
        while (child > 0 && waitpid(child, NULL, 0) < 0 && errno == EINTR) {}
    }
    free(lines.p);
    pack_when_due();
    return 0;
}

static int hook(const char *name, char **fallback);

/* `hookclient --shim <shim> <hook arguments...>`, as the kernel runs a shim's interpreter: the hook is
 * named by the shim's file name. post-receive gets the variables built in; the others, as fallback,
 * the shim itself run by /bin/sh (its `#!` line is a comment there). */
static int shim(int argc, char **argv) {
    const char *slash = strrchr(argv[2], '/'), *name = slash ? slash + 1 : argv[2];
    int post = strcmp(name, "post-receive") == 0;
    size_t n = 0;
    char *list = strdup(GITSWARM_PUSHER_VARIABLES), *save = NULL;
    char **args = calloc((size_t)argc + strlen(GITSWARM_PUSHER_VARIABLES) + 4, sizeof *args);
    if (!list || !args) {
        fputs("gitswarm: out of memory starting the hook\n", stderr);
        return 1;
    }
    if (post) {  /* post_receive's <variable...> -- */
        for (char *v = strtok_r(list, " ", &save); v; v = strtok_r(NULL, " ", &save)) args[n++] = v;
        args[n++] = "--";
    } else {  /* hook's fallback command */
        args[n++] = "/bin/sh", args[n++] = argv[2];
    }
    for (int i = 3; i < argc; i++) args[n++] = argv[i];
    return post ? post_receive((int)n, args) : hook(name, args);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fputs("usage: hookclient <hook-name> <fallback command...> (build " GITSWARM_BUILD ")\n", stderr);
        return 2;
    }
    if (strcmp(argv[1], "--shim") == 0) return shim(argc, argv);
    if (strcmp(argv[1], "post-receive") == 0) return post_receive(argc - 2, argv + 2);
    return hook(argv[1], argv + 2);
}

/* The hook `name` through the guard; `fallback` (a command line, NULL-ended) when no guard answers. */
static int hook(const char *name, char **fallback) {
    struct buf data = {0};
    char chunk[65536];
    int sent = 0;
    int live = strcmp(name, "proc-receive") == 0;
    while (!live) {  /* read whole first: a failure here must reject, never check a part */
        ssize_t n = read(0, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 || put(&data, chunk, (size_t)(n > 0 ? n : 0))) {
            perror("gitswarm: reading the hook's input");
            free(data.p);
            return 1;
        }
        if (n == 0) break;
    }
    if (only_applied(name, &data)) return free(data.p), 0;
    int code = ask_guard(name, &data, live, &sent);
    if (code < 0 && live && sent)
        fputs("gitswarm: the hub's guard died during the push; push again\n", stderr), code = 1;
    else if (code < 0 && !live && refill_stdin(&data))
        perror("gitswarm: passing the hook's input on"), code = 1;
    free(data.p);
    if (code >= 0) return code;
    execv(fallback[0], fallback);
    fprintf(stderr, "gitswarm: cannot run %s: %s\n", fallback[0], strerror(errno));
    return 1;
}
