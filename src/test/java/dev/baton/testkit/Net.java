package dev.baton.testkit;

import dev.baton.socket.Transport;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.stream.Stream;

/** Loopback-only helpers: free ports, available transports, config files. */
public final class Net {
    public static final InetAddress LOOPBACK = InetAddress.getLoopbackAddress();

    private Net() {
    }

    /** A TCP port that was free a moment ago on 127.0.0.1. */
    public static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, LOOPBACK)) {
            return s.getLocalPort();
        }
    }

    /**
     * The first of {@code n} consecutive ports free for TCP and UDP on every address (probed on the
     * wildcard), below the ephemeral range so no client socket takes one meanwhile.
     */
    public static int consecutiveFreePorts(int n) throws IOException {
        InetAddress any = InetAddress.getByName("0.0.0.0");
        for (int attempt = 0; attempt < 200; attempt++) {
            int base = java.util.concurrent.ThreadLocalRandom.current().nextInt(20000, 32000);
            java.util.List<AutoCloseable> held = new java.util.ArrayList<>();
            try {
                for (int i = 0; i < n; i++) {
                    held.add(new ServerSocket(base + i, 1, any));
                    held.add(new java.net.DatagramSocket(new java.net.InetSocketAddress(any, base + i)));
                }
                return base;
            } catch (IOException e) {
                // taken; try another base
            } finally {
                for (AutoCloseable c : held) {
                    try {
                        c.close();
                    } catch (Exception ignored) {
                        // closing a probe
                    }
                }
            }
        }
        throw new IOException("no " + n + " consecutive free ports");
    }

    /** Every transport this machine can run, for @MethodSource. */
    public static Stream<Transport> transports() {
        return Arrays.stream(Transport.values()).filter(Transport::isAvailable);
    }

    /** The config names of the transports here that can hand sockets over (io_uring, epoll), for @MethodSource. */
    public static Stream<String> handoffTransports() {
        return Arrays.stream(Transport.values()).filter(t -> t.isAvailable() && t.supportsReusePortAndHandoff())
                .map(Transport::label);
    }

    /** The config name of a transport ("io_uring", "epoll", "nio"). */
    public static String configName(Transport t) {
        return t.label();
    }

    public static Path writeConfig(Path dir, String name, String text) throws IOException {
        Path p = dir.resolve(name);
        Files.createDirectories(p.getParent());
        Files.writeString(p, text);
        return p;
    }
}
