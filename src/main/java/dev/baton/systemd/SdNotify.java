package dev.baton.systemd;

import jnr.ffi.LibraryLoader;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.charset.StandardCharsets;

/**
 * sd_notify(3) spoken directly: one datagram to the unix socket named by $NOTIFY_SOCKET (a path,
 * or an abstract socket written with a leading '@'). A no-op when not run by systemd.
 * Java has no AF_UNIX datagram sockets, so this binds socket(2) and sendto(2) through JNR.
 */
public final class SdNotify {
    private static final Logger log = LoggerFactory.getLogger(SdNotify.class);
    private static final int AF_UNIX = 1;
    private static final int SOCK_DGRAM_CLOEXEC = 2 | 0x80000;

    /** The two libc calls needed. */
    public interface LibC {
        int socket(int domain, int type, int protocol);

        int sendto(int fd, byte[] buf, long len, int flags, byte[] addr, int addrlen);

        int close(int fd);
    }

    private static volatile LibC libc;
    private final byte[] address;
    private final int addressLength;

    private SdNotify(byte[] address, int addressLength) {
        this.address = address;
        this.addressLength = addressLength;
    }

    /** The notifier for this process's environment, or null when $NOTIFY_SOCKET is unset. */
    public static SdNotify fromEnvironment() {
        String path = System.getenv("NOTIFY_SOCKET");
        if (path == null || path.isEmpty()) {
            return null;
        }
        byte[] name = path.getBytes(StandardCharsets.UTF_8);
        if (name.length > 107) {
            log.warn("NOTIFY_SOCKET path too long; not notifying systemd");
            return null;
        }
        // struct sockaddr_un: sa_family_t (native order, 2 bytes) + sun_path[108]
        byte[] addr = new byte[110];
        addr[0] = (byte) AF_UNIX;
        addr[1] = 0;
        System.arraycopy(name, 0, addr, 2, name.length);
        int len = 2 + name.length;
        if (name[0] == '@') {
            addr[2] = 0; // abstract namespace: leading NUL, length without terminator
        } else {
            len++; // include the terminating NUL of a path
        }
        return new SdNotify(addr, len);
    }

    /** Sends one state string such as "READY=1\nSTATUS=serving"; returns false (logged once) on failure. */
    public boolean send(String state) {
        LibC c = lib();
        int fd = c.socket(AF_UNIX, SOCK_DGRAM_CLOEXEC, 0);
        if (fd < 0) {
            log.warn("sd_notify: cannot create socket");
            return false;
        }
        try {
            byte[] msg = state.getBytes(StandardCharsets.UTF_8);
            int n = c.sendto(fd, msg, msg.length, 0x4000 /* MSG_NOSIGNAL */, address, addressLength);
            if (n < 0) {
                log.warn("sd_notify: sending '{}' failed", state.replace('\n', ' '));
                return false;
            }
            return true;
        } finally {
            c.close(fd);
        }
    }

    private static LibC lib() {
        LibC c = libc;
        if (c == null) {
            c = LibraryLoader.create(LibC.class).load("c");
            libc = c;
        }
        return c;
    }
}
