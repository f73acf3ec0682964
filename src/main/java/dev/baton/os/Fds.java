package dev.baton.os;

import jnr.constants.platform.Fcntl;
import jnr.constants.platform.OpenFlags;
import jnr.posix.POSIX;
import jnr.posix.POSIXFactory;

/** The few raw file descriptor calls Netty does not offer. */
public final class Fds {
    private Fds() {
    }

    /** Loaded on first use: jnr-posix generates its bindings then (0.1-0.2 s of CPU), which a start does not need. */
    private static final class Posix {
        static final POSIX POSIX = POSIXFactory.getNativePOSIX();
    }

    public static POSIX posix() {
        return Posix.POSIX;
    }

    /** Sets O_NONBLOCK (the event loops need it; an inherited socket may not have it). */
    public static void setNonBlocking(int fd) {
        POSIX posix = posix();
        int flags = posix.fcntl(fd, Fcntl.F_GETFL);
        if (flags < 0) {
            throw new IllegalArgumentException("fd " + fd + " is not open: errno " + posix.errno());
        }
        int nonBlocking = OpenFlags.O_NONBLOCK.intValue();
        if ((flags & nonBlocking) == 0) {
            posix.fcntlInt(fd, Fcntl.F_SETFL, flags | nonBlocking);
        }
    }

    /**
     * Sets IPV6_V6ONLY on an IPv6 socket that is not bound yet: on, it takes IPv6 clients only;
     * off, IPv4 clients too (as IPv4-mapped addresses).
     */
    public static void setIpv6Only(int fd, boolean on) {
        if (Syscalls.get().setsockopt(fd, Syscalls.IPPROTO_IPV6, Syscalls.IPV6_V6ONLY, new int[] {on ? 1 : 0}, 4) != 0) {
            throw new IllegalStateException("cannot set IPV6_V6ONLY on fd " + fd + ": " + Syscalls.error());
        }
    }

    /** IPV6_V6ONLY of a socket; false for a socket that is not IPv6. */
    public static boolean ipv6Only(int fd) {
        int[] value = new int[1];
        int[] len = {4};
        return Syscalls.get().getsockopt(fd, Syscalls.IPPROTO_IPV6, Syscalls.IPV6_V6ONLY, value, len) == 0
                && value[0] != 0;
    }

    /** Sets a pipe's capacity; returns the capacity the kernel gave, or -1 (the pipe keeps its own). */
    public static int setPipeSize(int fd, int bytes) {
        return Syscalls.get().fcntl(fd, Syscalls.F_SETPIPE_SZ, bytes);
    }

    /** A second descriptor for the same open file (the child spawner closes it for children). */
    public static int dup(int fd) {
        int copy = posix().dup(fd);
        if (copy < 0) {
            throw new IllegalStateException("cannot duplicate fd " + fd + ": errno " + posix().errno());
        }
        return copy;
    }

    public static void close(int fd) {
        posix().close(fd);
    }
}
