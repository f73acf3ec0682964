package dev.baton.systemd;

import jnr.ffi.LibraryLoader;
import jnr.ffi.Runtime;

/** The few libc calls systemd integration needs that neither Java nor jnr-posix offers. */
final class LibC {
    static final int AF_UNIX = 1;
    static final int AF_INET = 2;
    static final int AF_INET6 = 10;
    static final int SOCK_STREAM = 1;
    static final int SOCK_DGRAM = 2;
    static final int SOCK_CLOEXEC = 0x80000;
    static final int MSG_NOSIGNAL = 0x4000;
    static final int SOL_SOCKET = 1;
    static final int SO_TYPE = 3;
    static final int SO_ACCEPTCONN = 30;

    /** Bindings; arrays are copied in and out by JNR. */
    public interface Calls {
        int socket(int domain, int type, int protocol);

        long sendto(int fd, byte[] buf, long len, int flags, byte[] addr, int addrlen);

        int getsockname(int fd, byte[] addr, int[] addrlen);

        int getsockopt(int fd, int level, int name, int[] value, int[] len);

        int close(int fd);

        int unsetenv(String name);
    }

    private static volatile Calls calls;

    static Calls get() {
        Calls c = calls;
        if (c == null) {
            synchronized (LibC.class) {
                c = calls;
                if (c == null) {
                    c = LibraryLoader.create(Calls.class).load("c");
                    calls = c;
                }
            }
        }
        return c;
    }

    static int errno() {
        return Runtime.getSystemRuntime().getLastError();
    }

    private LibC() {
    }
}
