"""Write deploy/seccomp/heldout.json, the seccomp profile of every sandbox container.

    python deploy/seccomp/generate.py          # rewrites heldout.json next to this file
    python deploy/seccomp/generate.py --check  # fails if heldout.json is not what it writes

Docker has no "default profile minus X", so this writes a whole profile in Docker's
format: an allow-list (everything else fails with EPERM). It starts from the syscalls
Docker's default profile (moby profiles/seccomp/default.json) allows without a capability,
since the sandbox drops every capability, and leaves out DENIED below. The profile is
filtered further by what each rule keeps: `clone` without namespace flags, `clone3`
answering ENOSYS (so libc falls back to clone, whose flags a filter can see), `socket`
without AF_VSOCK.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# Allowed by Docker's default profile, and by this one.
ALLOWED = """
accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32
clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime
clock_gettime64 clock_nanosleep clock_nanosleep_time64 close close_range connect
copy_file_range creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old
epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit
exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir fchmod
fchmodat fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork
fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate
ftruncate64 futex futex_time64 futex_waitv futimesat getcpu getcwd getdents getdents64
getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer
getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid getresgid32
getresuid getresuid32 getrlimit get_robust_list getrusage getsid getsockname getsockopt
get_thread_area gettid gettimeofday getuid getuid32 getxattr inotify_add_watch
inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents
io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit ipc kill
lchown lchown32 lgetxattr link linkat listen listxattr llistxattr _llseek lremovexattr
lseek lsetxattr lstat lstat64 madvise membarrier memfd_create mincore mkdir mkdirat mknod
mknodat mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open
mq_timedreceive mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap
msgctl msgget msgrcv msgsnd msync munlock munlockall munmap nanosleep newfstatat
_newselect open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc
pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64
pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read readahead readlink readlinkat
readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg rename renameat renameat2
restart_syscall rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo
rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo
sched_getaffinity sched_getattr sched_getparam sched_get_priority_max
sched_get_priority_min sched_getscheduler sched_rr_get_interval
sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam
sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop
semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32
setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid setpriority
setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32
setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address setuid
setuid32 setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4
sigprocmask sigreturn socketcall socketpair splice stat stat64 statfs statfs64 statx
symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill time timer_create
timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64
timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 times
tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat utime utimensat
utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev
""".split()  # noqa: SIM905 (a word list reads better than 300 quoted names)

# Left out, with why. Some of these Docker allows by default, or with a capability the
# sandbox never has; listing them here documents the decision and guards against a later
# edit of ALLOWED bringing one back (main() refuses the overlap).
DENIED = {
    # Reading or changing another process: the sandbox's own wrapper is in reach.
    "ptrace": "attach to and stop or rewrite another process",
    "process_vm_readv": "read another process's memory",
    "process_vm_writev": "write another process's memory",
    "process_madvise": "act on another process's memory",
    "pidfd_getfd": "steal another process's file descriptors",
    "kcmp": "compare another process's kernel state",
    # Kernel attack surface a scorer or a model has no use for.
    "personality": "turn off address-space randomisation and other hardening",
    "keyctl": "the kernel keyring, not namespaced",
    "add_key": "the kernel keyring, not namespaced",
    "request_key": "the kernel keyring, not namespaced",
    "userfaultfd": "hold the kernel on a page fault (exploit helper)",
    "bpf": "load programs into the kernel",
    "perf_event_open": "hardware counters and kernel profiling",
    "io_uring_setup": "io_uring: a large, often-exploited kernel interface",
    "io_uring_enter": "io_uring",
    "io_uring_register": "io_uring",
    "modify_ldt": "16-bit segments (exploit helper)",
    "memfd_secret": "memory hidden from the kernel",
    "remap_file_pages": "deprecated and rarely used",
    "process_mrelease": "act on another process's memory",
    "mount": "mount filesystems",
    "umount": "unmount filesystems",
    "umount2": "unmount filesystems",
    "move_mount": "mount API",
    "open_tree": "mount API",
    "fsopen": "mount API",
    "fsconfig": "mount API",
    "fsmount": "mount API",
    "fspick": "mount API",
    "mount_setattr": "mount API",
    "unshare": "new namespaces",
    "setns": "enter namespaces",
    "pivot_root": "change the root",
    "chroot": "change the root",
    "kexec_load": "load a new kernel",
    "kexec_file_load": "load a new kernel",
    "init_module": "load kernel modules",
    "finit_module": "load kernel modules",
    "delete_module": "unload kernel modules",
    "reboot": "reboot",
    "swapon": "swap",
    "swapoff": "swap",
    "syslog": "the kernel log",
    "acct": "process accounting",
    "quotactl": "disk quotas",
    "lookup_dcookie": "kernel profiling",
    "open_by_handle_at": "open files outside the container by handle",
    "name_to_handle_at": "file handles (pairs with open_by_handle_at)",
    "fanotify_init": "watch the whole filesystem",
    "iopl": "raw I/O ports",
    "ioperm": "raw I/O ports",
    "settimeofday": "the host's clock",
    "clock_settime": "the host's clock",
    "stime": "the host's clock",
    "sethostname": "the host name",
    "setdomainname": "the domain name",
    "vhangup": "terminals",
}

# Architecture-specific calls a normal program makes.
ARCH_ONLY = [
    (["arch_prctl"], ["amd64", "x32"]),
    (
        [
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ],
        ["arm", "arm64"],
    ),
]
CLONE_NAMESPACE_FLAGS = (
    0x7E020000  # CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
)
AF_VSOCK = 40
EPERM, ENOSYS = 1, 38


def profile() -> dict[str, object]:
    overlap = sorted(set(ALLOWED) & set(DENIED))
    if overlap:
        raise SystemExit(f"both allowed and denied: {', '.join(overlap)}")
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": EPERM,
        "archMap": [
            {
                "architecture": "SCMP_ARCH_X86_64",
                "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            },
            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
        ],
        "syscalls": [
            {"names": sorted(ALLOWED), "action": "SCMP_ACT_ALLOW"},
            *(
                {"names": names, "action": "SCMP_ACT_ALLOW", "includes": {"arches": arches}}
                for names, arches in ARCH_ONLY
            ),
            {
                "names": ["socket"],
                "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 0, "value": AF_VSOCK, "op": "SCMP_CMP_NE"}],
            },
            {
                "names": ["clone"],
                "action": "SCMP_ACT_ALLOW",
                "args": [
                    {
                        "index": 0,
                        "value": CLONE_NAMESPACE_FLAGS,
                        "valueTwo": 0,
                        "op": "SCMP_CMP_MASKED_EQ",
                    }
                ],
            },
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS},
        ],
    }


def main() -> None:
    target = Path(__file__).with_name("heldout.json")
    text = json.dumps(profile(), indent=1) + "\n"
    if "--check" in sys.argv[1:]:
        if target.read_text(encoding="utf-8") != text:
            raise SystemExit(f"{target} is stale: run python {__file__}")
        return
    target.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
