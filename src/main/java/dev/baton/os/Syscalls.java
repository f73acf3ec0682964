package dev.baton.os;

import jnr.constants.platform.Errno;
import jnr.ffi.LibraryLoader;
import jnr.ffi.Runtime;

/**
 * The libc calls for namespaces and socket options that neither Java, Netty nor jnr-posix offer.
 * Arguments are plain ints and Java arrays (JNR copies arrays in and out for the call), so no
 * native memory is held only by a native structure.
 */
final class Syscalls {
    static final int O_RDONLY = 0;
    static final int O_CLOEXEC = 0x80000;
    static final int CLONE_NEWNET = 0x40000000;
    /** ioctl on a namespace file: which kind of namespace it is (Linux 4.11+). */
    static final long NS_GET_NSTYPE = 0xb703;
    static final int IPPROTO_IPV6 = 41;
    static final int IPV6_V6ONLY = 26;
    static final int SOL_SOCKET = 1;
    static final int SO_KEEPALIVE = 9;
    static final int IPPROTO_TCP = 6;
    static final int TCP_KEEPIDLE = 4;
    static final int TCP_KEEPINTVL = 5;
    static final int TCP_KEEPCNT = 6;
    /** fcntl: set a pipe's capacity (rounded up to pages by the kernel, at most fs.pipe-max-size). */
    static final int F_SETPIPE_SZ = 1031;

    /** Bindings; the variadic open and ioctl are declared with every argument passed. */
    public interface Calls {
        int open(String path, int flags, int mode);

        int close(int fd);

        int setns(int fd, int nstype);

        int ioctl(int fd, long request, long arg);

        int setsockopt(int fd, int level, int name, int[] value, int len);

        int getsockopt(int fd, int level, int name, int[] value, int[] len);

        int fcntl(int fd, int cmd, int arg);

        /** signal(2) with the handler as a number: 0 is SIG_DFL. */
        long signal(int signum, long handler);
    }

    private static final Calls CALLS = LibraryLoader.create(Calls.class).load("c");

    private Syscalls() {
    }

    static Calls get() {
        return CALLS;
    }

    static int errno() {
        return Runtime.getSystemRuntime().getLastError();
    }

    /** The last error as words, e.g. "Operation not permitted". */
    static String error() {
        int e = errno();
        Errno errno = Errno.valueOf(e);
        return errno == null || errno == Errno.__UNKNOWN_CONSTANT__ ? "errno " + e : errno.description();
    }
}
