package dev.baton.os;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.lang.ref.Cleaner;
import java.lang.ref.Reference;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Supplier;

/**
 * A network namespace other than baton's own, such as a container's (/proc/PID/ns/net) or one
 * made by {@code ip netns add} (/run/netns/NAME), held open by a descriptor.
 *
 * <p>A socket belongs to the namespace its creating thread was in at socket(2), for its whole
 * life. {@link #call} switches the calling thread into this namespace for the one call that
 * creates a socket and always switches it back. Holding the descriptor keeps the namespace
 * alive even after every process in it has exited; it is closed once this object is unreachable.
 */
public final class NetNamespace {
    private static final Logger log = LoggerFactory.getLogger(NetNamespace.class);
    private static final Cleaner CLEANER = Cleaner.create();

    private final Path path;
    private final int fd;
    private final long inode;

    private NetNamespace(Path path, int fd, long inode) {
        this.path = path;
        this.fd = fd;
        this.inode = inode;
        CLEANER.register(this, () -> Syscalls.get().close(fd));
    }

    /**
     * Opens a namespace file and checks that it is a network namespace.
     *
     * @throws IOException with a short reason ("no such file", "permission denied", "a mnt
     *                     namespace, not a network namespace", ...)
     */
    public static NetNamespace open(Path path) throws IOException {
        if (!path.isAbsolute()) {
            throw new IOException("must be an absolute path (/run/netns/NAME or /proc/PID/ns/net)");
        }
        if (!Files.exists(path)) {
            throw new IOException(path + ": no such file");
        }
        Syscalls.Calls c = Syscalls.get();
        int fd = c.open(path.toString(), Syscalls.O_RDONLY | Syscalls.O_CLOEXEC, 0);
        if (fd < 0) {
            throw new IOException(path + ": cannot open: " + Syscalls.error().toLowerCase());
        }
        try {
            int type = c.ioctl(fd, Syscalls.NS_GET_NSTYPE, 0);
            if (type < 0) {
                throw new IOException(path + ": not a namespace file");
            }
            if (type != Syscalls.CLONE_NEWNET) {
                throw new IOException(path + ": a " + kind(type) + " namespace, not a network namespace");
            }
            long inode = inodeOf(fd);
            return new NetNamespace(path, fd, inode);
        } catch (IOException | RuntimeException e) {
            c.close(fd);
            throw e;
        }
    }

    private static long inodeOf(int fd) throws IOException {
        // The descriptor's /proc link leads to the namespace's nsfs inode, its identity.
        Object ino = Files.getAttribute(Path.of("/proc/self/fd/" + fd), "unix:ino");
        return ((Number) ino).longValue();
    }

    private static String kind(int type) {
        return switch (type) {
            case 0x00020000 -> "mount";
            case 0x02000000 -> "cgroup";
            case 0x04000000 -> "uts";
            case 0x08000000 -> "ipc";
            case 0x10000000 -> "user";
            case 0x20000000 -> "pid";
            case 0x00000080 -> "time";
            default -> "non-network";
        };
    }

    /** The inode of this process's own network namespace (what /proc/self/ns/net names). */
    public static long ownInode() {
        try {
            return ((Number) Files.getAttribute(Path.of("/proc/self/ns/net"), "unix:ino")).longValue();
        } catch (IOException e) {
            throw new IllegalStateException("cannot read /proc/self/ns/net: " + e.getMessage(), e);
        }
    }

    public Path path() {
        return path;
    }

    /** The namespace's identity, as `lsns -t net` and `ls -l /proc/PID/ns/net` show it. */
    public long inode() {
        return inode;
    }

    /** Whether this is the namespace baton itself runs in (then nothing needs switching). */
    public boolean isOwn() {
        return inode == ownInode();
    }

    /**
     * Runs {@code body} on the calling thread switched into this namespace, and switches the
     * thread back to the namespace it was in, whatever happens. Meant for the one call that
     * creates a socket; the socket stays in this namespace for life.
     *
     * @throws IllegalStateException when the thread cannot enter the namespace (it then never left its own)
     */
    public <T> T call(Supplier<T> body) {
        Syscalls.Calls c = Syscalls.get();
        int home = c.open("/proc/thread-self/ns/net", Syscalls.O_RDONLY | Syscalls.O_CLOEXEC, 0);
        if (home < 0) {
            throw new IllegalStateException("cannot open /proc/thread-self/ns/net: " + Syscalls.error());
        }
        try {
            if (c.setns(fd, Syscalls.CLONE_NEWNET) != 0) {
                boolean eperm = Syscalls.errno() == 1;
                throw new IllegalStateException("cannot enter network namespace " + path + ": " + Syscalls.error()
                        + (eperm ? " (needs CAP_SYS_ADMIN)" : ""));
            }
            try {
                return body.get();
            } finally {
                if (c.setns(home, Syscalls.CLONE_NEWNET) != 0) {
                    // A thread left in the wrong namespace would open every later socket there,
                    // sending other proxies' traffic into a container: stop rather than do that.
                    log.error("cannot return a thread from network namespace {}: {}; stopping", path, Syscalls.error());
                    Runtime.getRuntime().halt(70);
                }
            }
        } finally {
            c.close(home);
            // The descriptor is closed when this object becomes unreachable: keep it alive until here.
            Reference.reachabilityFence(this);
        }
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof NetNamespace n && n.inode == inode;
    }

    @Override
    public int hashCode() {
        return Long.hashCode(inode);
    }

    @Override
    public String toString() {
        return path + " (net:[" + inode + "])";
    }
}
