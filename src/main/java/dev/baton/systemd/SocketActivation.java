package dev.baton.systemd;

import dev.baton.config.BatonConfig;
import dev.baton.config.Protocol;
import dev.baton.config.ProxyConfig;
import dev.baton.socket.ListenerKey;
import dev.baton.socket.SocketRegistry;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Sockets passed by systemd socket activation (LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES; the fds
 * start at 3). Each fd is identified by what it is (getsockname, SO_TYPE), not by its name: the
 * name only serves messages. Every fd must match a configured listen address; the matching ones
 * are offered to the {@link SocketRegistry}, which adopts them when it opens that address.
 */
public final class SocketActivation {
    private static final Logger log = LoggerFactory.getLogger(SocketActivation.class);
    /** The first passed fd (SD_LISTEN_FDS_START). */
    public static final int FIRST_FD = 3;
    /** The variables read here; unset after reading so children do not inherit them. */
    public static final List<String> VARIABLES = List.of("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES");

    /** One passed socket. */
    public record Passed(int fd, String name, ListenerKey key) {
    }

    /** Thrown with a one-line message for the operator. */
    public static final class ActivationException extends Exception {
        public ActivationException(String message) {
            super(message);
        }
    }

    private SocketActivation() {
    }

    /**
     * Reads the environment, identifies the passed sockets and offers those of the configuration
     * to the registry; call before Daemon.start(). Returns what was offered (empty when systemd
     * passed nothing to this process).
     */
    public static List<Passed> offer(BatonConfig config, SocketRegistry registry) throws ActivationException {
        Map<String, String> env = System.getenv();
        String pid = env.get("LISTEN_PID");
        String fds = env.get("LISTEN_FDS");
        String names = env.get("LISTEN_FDNAMES");
        unsetEnvironment();
        if (fds == null || fds.isEmpty()) {
            return List.of();
        }
        if (pid != null && !pid.equals(Long.toString(ProcessHandle.current().pid()))) {
            log.debug("LISTEN_PID={} is not us; ignoring LISTEN_FDS", pid);
            return List.of();
        }
        int count;
        try {
            count = Integer.parseInt(fds.trim());
        } catch (NumberFormatException e) {
            throw new ActivationException("LISTEN_FDS=" + fds + ": not a number");
        }
        List<Passed> passed = identifyAll(count, names);
        offer(config, registry, passed);
        return passed;
    }

    /** Checks the passed sockets against the configuration and offers them; visible for tests. */
    public static void offer(BatonConfig config, SocketRegistry registry, List<Passed> passed)
            throws ActivationException {
        Set<ListenerKey> configured = new HashSet<>();
        for (ProxyConfig p : config.proxyList()) {
            for (InetSocketAddress a : p.listen()) {
                configured.add(ListenerKey.of(p, a));
            }
        }
        List<String> unmatched = new ArrayList<>();
        for (Passed p : passed) {
            if (!configured.contains(p.key())) {
                unmatched.add(describe(p));
            }
        }
        if (!unmatched.isEmpty()) {
            throw new ActivationException("socket activation: no configured proxy listens on "
                    + String.join(", ", unmatched) + "; add it to a proxy's listen or remove it from the .socket unit");
        }
        Map<ListenerKey, Integer> index = new HashMap<>();
        for (Passed p : passed) {
            int i = index.merge(p.key(), 1, Integer::sum) - 1;
            registry.offer(p.key(), i, p.fd());
            log.info("socket activation: fd {} ({}) is {}", p.fd(), p.name(), p.key());
        }
    }

    private static String describe(Passed p) {
        return p.key().wireName() + " (fd " + p.fd() + (p.name().isEmpty() ? "" : ", name " + p.name()) + ")";
    }

    static List<Passed> identifyAll(int count, String names) throws ActivationException {
        String[] n = names == null || names.isEmpty() ? new String[0] : names.split(":", -1);
        List<Passed> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            int fd = FIRST_FD + i;
            String name = i < n.length ? n[i] : "";
            out.add(new Passed(fd, name, identify(fd, name)));
        }
        return out;
    }

    /** What listening socket an fd is: its protocol (SO_TYPE) and bound address (getsockname). */
    public static ListenerKey identify(int fd, String name) throws ActivationException {
        LibC.Calls c = LibC.get();
        String what = "socket activation: fd " + fd + (name.isEmpty() ? "" : " (" + name + ")");
        int[] value = new int[1];
        int[] len = {4};
        if (c.getsockopt(fd, LibC.SOL_SOCKET, LibC.SO_TYPE, value, len) != 0) {
            throw new ActivationException(what + ": not a socket (errno " + LibC.errno() + ")");
        }
        Protocol protocol;
        if (value[0] == LibC.SOCK_STREAM) {
            protocol = Protocol.TCP;
            int[] listening = new int[1];
            len[0] = 4;
            if (c.getsockopt(fd, LibC.SOL_SOCKET, LibC.SO_ACCEPTCONN, listening, len) == 0 && listening[0] == 0) {
                throw new ActivationException(what + ": a stream socket that is not listening"
                        + " (Accept=yes is not supported; use Accept=no)");
            }
        } else if (value[0] == LibC.SOCK_DGRAM) {
            protocol = Protocol.UDP;
        } else {
            throw new ActivationException(what + ": socket type " + value[0] + " is neither stream nor datagram");
        }
        byte[] addr = new byte[128];
        int[] alen = {addr.length};
        if (c.getsockname(fd, addr, alen) != 0) {
            throw new ActivationException(what + ": getsockname failed (errno " + LibC.errno() + ")");
        }
        // A systemd socket on [::] takes IPv4 clients too unless BindIPv6Only=ipv6-only.
        return new ListenerKey(protocol, sockaddr(addr, what), dev.baton.os.Fds.ipv6Only(fd), 0);
    }

    static InetSocketAddress sockaddr(byte[] a, String what) throws ActivationException {
        int family = ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN
                ? (a[0] & 0xff) | (a[1] & 0xff) << 8
                : (a[1] & 0xff) | (a[0] & 0xff) << 8;
        int port = (a[2] & 0xff) << 8 | (a[3] & 0xff); // network byte order
        try {
            if (family == LibC.AF_INET) {
                return new InetSocketAddress(InetAddress.getByAddress(Arrays.copyOfRange(a, 4, 8)), port);
            }
            if (family == LibC.AF_INET6) {
                return new InetSocketAddress(InetAddress.getByAddress(Arrays.copyOfRange(a, 8, 24)), port);
            }
        } catch (UnknownHostException e) {
            throw new ActivationException(what + ": bad address");
        }
        throw new ActivationException(what + ": address family " + family + " is not IPv4 or IPv6");
    }

    /** Removes LISTEN_* from the process environment (libc's; Java's copy is read-only). */
    public static void unsetEnvironment() {
        Map<String, String> env = System.getenv();
        if (VARIABLES.stream().noneMatch(env::containsKey)) {
            return;  // nothing to unset: spare the start loading the libc bindings
        }
        try {
            LibC.Calls c = LibC.get();
            for (String v : VARIABLES) {
                c.unsetenv(v);
            }
        } catch (RuntimeException | LinkageError e) {
            log.debug("cannot unset LISTEN_*: {}", e.toString());
        }
    }
}
