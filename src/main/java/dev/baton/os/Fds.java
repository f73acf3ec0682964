package dev.baton.os;

import jnr.constants.platform.Fcntl;
import jnr.constants.platform.OpenFlags;
import jnr.posix.POSIX;
import jnr.posix.POSIXFactory;

/** The few raw file descriptor calls Netty does not offer. */
public final class Fds {
    private static final POSIX posix = POSIXFactory.getNativePOSIX();

    private Fds() {
    }

    public static POSIX posix() {
        return posix;
    }

    /** Sets O_NONBLOCK (the event loops need it; an inherited socket may not have it). */
    public static void setNonBlocking(int fd) {
        int flags = posix.fcntl(fd, Fcntl.F_GETFL);
        if (flags < 0) {
            throw new IllegalArgumentException("fd " + fd + " is not open: errno " + posix.errno());
        }
        int nonBlocking = OpenFlags.O_NONBLOCK.intValue();
        if ((flags & nonBlocking) == 0) {
            posix.fcntlInt(fd, Fcntl.F_SETFL, flags | nonBlocking);
        }
    }

    public static void close(int fd) {
        posix.close(fd);
    }
}
