package io.netty.channel.unix;

import java.lang.reflect.Field;

/**
 * Netty socket objects for descriptors whose address family baton already knows, without the
 * getsockname(2) that Netty's {@link Socket} constructor makes to learn it. A relayed connection
 * has two such sockets: the accepted one (the family of its listening socket) and the upstream one
 * (made here, of the family asked for). On this kind of VM a system call costs 1-2 µs, and these
 * two were about 3% of the CPU of a short connection.
 *
 * <p>The object is allocated without running its constructors and given the two fields they set
 * (the descriptor, and whether it is AF_INET6); its state field starts as a constructed one's
 * does (open). Where that cannot be done (no {@code sun.misc.Unsafe}, or the fields are not
 * there: another Netty version) the constructor is used, with its getsockname. Lives in Netty's
 * package for the protected members of {@link Socket}; pinned to the Netty version in pom.xml.
 */
public final class BatonKnownFamily {
    private static final sun.misc.Unsafe UNSAFE;
    private static final long FD;
    private static final long IPV6;

    static {
        sun.misc.Unsafe u = null;
        long fd = -1;
        long ipv6 = -1;
        try {
            Field f = sun.misc.Unsafe.class.getDeclaredField("theUnsafe");
            f.setAccessible(true);
            u = (sun.misc.Unsafe) f.get(null);
            fd = u.objectFieldOffset(FileDescriptor.class.getDeclaredField("fd"));
            ipv6 = u.objectFieldOffset(Socket.class.getDeclaredField("ipv6"));
        } catch (ReflectiveOperationException | RuntimeException e) {
            u = null;
        }
        UNSAFE = u;
        FD = fd;
        IPV6 = ipv6;
    }

    private BatonKnownFamily() {
    }

    /** Whether sockets are made without asking the kernel their family (false: Netty's constructor asks). */
    public static boolean bypassesConstructor() {
        return UNSAFE != null;
    }

    /** Whether {@code s} is an AF_INET6 socket, as Netty learnt when it made it. */
    public static boolean isIpv6(Socket s) {
        return s.ipv6;
    }

    /** A new non-blocking TCP socket's descriptor, AF_INET6 if {@code ipv6}. */
    public static int newStreamFd(boolean ipv6) {
        return Socket.newSocketStream0(ipv6);
    }

    /**
     * An instance of {@code type} (a subclass of {@link Socket} with no fields of its own, such as
     * LinuxSocket) for {@code fd} of the given family, or null where it cannot be made so (the
     * caller then uses the constructor).
     */
    public static <T extends Socket> T wrap(Class<T> type, int fd, boolean ipv6) {
        if (UNSAFE == null || fd < 0) {
            return null;
        }
        try {
            T s = type.cast(UNSAFE.allocateInstance(type));
            UNSAFE.putInt(s, FD, fd);
            UNSAFE.putBoolean(s, IPV6, ipv6);
            UNSAFE.storeFence(); // published as safely as final fields set by a constructor
            return s;
        } catch (InstantiationException e) {
            return null;
        }
    }
}
