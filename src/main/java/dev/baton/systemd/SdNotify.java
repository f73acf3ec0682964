package dev.baton.systemd;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;

/**
 * Tells the service manager about our state over $NOTIFY_SOCKET (the sd_notify protocol: one
 * datagram of newline-separated VAR=value lines to an AF_UNIX datagram socket; a name starting
 * with '@' is in the abstract namespace). Without NOTIFY_SOCKET every method does nothing.
 *
 * <p>Thread-safe: one datagram per call; a failed send is logged once and never thrown.
 */
public final class SdNotify {
    private static final Logger log = LoggerFactory.getLogger(SdNotify.class);
    /** sockaddr_un.sun_path is 108 bytes. */
    private static final int SUN_PATH = 108;

    private final byte[] address;
    private final int addressLength;
    private volatile boolean warned;

    private SdNotify(byte[] address, int addressLength) {
        this.address = address;
        this.addressLength = addressLength;
    }

    /** From the environment; {@link #enabled()} is false when NOTIFY_SOCKET is unset or unusable. */
    public static SdNotify fromEnvironment() {
        return forSocket(System.getenv("NOTIFY_SOCKET"));
    }

    /** For a given NOTIFY_SOCKET value (an absolute path or '@abstract'); null or empty disables. */
    public static SdNotify forSocket(String socket) {
        if (socket == null || socket.isEmpty()) {
            return new SdNotify(null, 0);
        }
        if (socket.charAt(0) != '/' && socket.charAt(0) != '@') {
            log.warn("NOTIFY_SOCKET={}: not a path or an abstract name; not notifying systemd", socket);
            return new SdNotify(null, 0);
        }
        byte[] name = socket.getBytes(StandardCharsets.UTF_8);
        boolean abstractName = name[0] == '@';
        if (abstractName) {
            name[0] = 0;
        }
        if (name.length > SUN_PATH - (abstractName ? 0 : 1)) {
            log.warn("NOTIFY_SOCKET={}: name too long; not notifying systemd", socket);
            return new SdNotify(null, 0);
        }
        // struct sockaddr_un { sa_family_t sun_family; char sun_path[108]; }, little or big endian.
        byte[] addr = new byte[2 + SUN_PATH];
        short family = LibC.AF_UNIX;
        if (java.nio.ByteOrder.nativeOrder() == java.nio.ByteOrder.LITTLE_ENDIAN) {
            addr[0] = (byte) family;
        } else {
            addr[1] = (byte) family;
        }
        System.arraycopy(name, 0, addr, 2, name.length);
        // An abstract name's length is exact (no terminating NUL); a path's includes the NUL.
        int len = 2 + name.length + (abstractName ? 0 : 1);
        return new SdNotify(addr, len);
    }

    public boolean enabled() {
        return address != null;
    }

    /** Sends the given lines as one notification; returns whether it was delivered. */
    public boolean send(String... lines) {
        if (address == null) {
            return false;
        }
        byte[] msg = String.join("\n", lines).getBytes(StandardCharsets.UTF_8);
        LibC.Calls c = LibC.get();
        int fd = c.socket(LibC.AF_UNIX, LibC.SOCK_DGRAM | LibC.SOCK_CLOEXEC, 0);
        if (fd < 0) {
            warnOnce("socket", LibC.errno());
            return false;
        }
        try {
            long n = c.sendto(fd, msg, msg.length, LibC.MSG_NOSIGNAL, address, addressLength);
            if (n < 0) {
                warnOnce("sendto", LibC.errno());
                return false;
            }
            return true;
        } finally {
            c.close(fd);
        }
    }

    private void warnOnce(String call, int errno) {
        if (!warned) {
            warned = true;
            log.warn("sd_notify: {} failed (errno {}); systemd may not see baton's state", call, errno);
        }
    }

    /** READY=1 with our pid and a status line: the service is up. */
    public boolean ready(String status) {
        return send("READY=1", "MAINPID=" + ProcessHandle.current().pid(), "STATUS=" + oneLine(status));
    }

    /** MAINPID=: a successor process announcing itself as the service's main process. */
    public boolean mainPid(long pid) {
        return send("MAINPID=" + pid);
    }

    /** RELOADING=1 with the CLOCK_MONOTONIC time systemd 253+ asks for (ignored by older ones). */
    public boolean reloading(String status) {
        return send("RELOADING=1", "MONOTONIC_USEC=" + monotonicMicros(), "STATUS=" + oneLine(status));
    }

    public boolean stopping(String status) {
        return send("STOPPING=1", "STATUS=" + oneLine(status));
    }

    public boolean status(String status) {
        return send("STATUS=" + oneLine(status));
    }

    public boolean watchdog() {
        return send("WATCHDOG=1");
    }

    private static String oneLine(String s) {
        return s.replace('\n', ' ');
    }

    /**
     * CLOCK_MONOTONIC in microseconds. On Linux HotSpot, System.nanoTime() reads CLOCK_MONOTONIC,
     * the clock systemd compares MONOTONIC_USEC with.
     */
    static long monotonicMicros() {
        return TimeUnit.NANOSECONDS.toMicros(System.nanoTime());
    }
}
