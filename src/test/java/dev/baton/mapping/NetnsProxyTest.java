package dev.baton.mapping;

import dev.baton.daemon.Daemon;
import dev.baton.socket.Transport;
import dev.baton.testkit.NamedBackend;
import dev.baton.testkit.Namespaces;
import dev.baton.testkit.Net;
import dev.baton.testkit.Proxies;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.net.ConnectException;
import java.net.DatagramSocket;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Path;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * upstream-netns and listen-netns in process, on every transport, with a real namespace that
 * has nothing but its own loopback (like a container started with --network none): no route
 * from the host reaches it, yet baton relays into it and out of it.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class NetnsProxyTest {
    private static Namespaces lab;
    private static String ns;

    @TempDir
    Path dir;

    static Stream<Transport> transports() {
        return Net.transports();
    }

    @BeforeAll
    static void namespace() throws IOException {
        String why = Namespaces.unavailable();
        assumeTrue(why == null, why);
        lab = new Namespaces();
        ns = lab.add("c");
    }

    @AfterAll
    static void cleanUp() {
        if (lab != null) {
            lab.close();
        }
    }

    /** A port free for TCP and UDP on 127.0.0.1 (outside the ephemeral range that flows use). */
    private static int freePort() throws IOException {
        for (int attempt = 0; attempt < 200; attempt++) {
            int p = ThreadLocalRandom.current().nextInt(20000, 32000);
            try (java.net.ServerSocket t = new java.net.ServerSocket(p, 1, Net.LOOPBACK);
                 DatagramSocket u = new DatagramSocket(new InetSocketAddress(Net.LOOPBACK, p))) {
                return p;
            } catch (IOException e) {
                // taken
            }
        }
        throw new IOException("no free port");
    }

    @ParameterizedTest
    @MethodSource("transports")
    void relays_into_and_out_of_a_namespace_with_no_route_from_the_host(Transport t) throws Exception {
        NamedBackend inside = Namespaces.in(ns, () -> new NamedBackend("inside", Net.LOOPBACK, 0));
        try (inside; NamedBackend host = new NamedBackend("host", Net.LOOPBACK, 0)) {
            int listen = freePort();
            int plain = freePort();
            String path = Namespaces.path(ns).toString();
            // The host's 127.0.0.1:listen goes into the namespace; the namespace's own
            // 127.0.0.1:listen (another socket, same address) comes out to the host.
            Daemon d = Proxies.start(dir, t, 1, ""
                    + "into { listen = \"127.0.0.1:" + listen + "\", upstreams = \"127.0.0.1:" + inside.port()
                    + "\", upstream-netns = \"" + path + "\" }\n"
                    + "intou { protocol = udp, listen = \"127.0.0.1:" + listen + "\", upstreams = \"127.0.0.1:"
                    + inside.port() + "\", upstream-netns = \"" + path + "\" }\n"
                    + "out { listen = \"127.0.0.1:" + listen + "\", listen-netns = \"" + path
                    + "\", upstreams = \"127.0.0.1:" + host.port() + "\" }\n"
                    + "outu { protocol = udp, listen = \"127.0.0.1:" + listen + "\", listen-netns = \"" + path
                    + "\", upstreams = \"127.0.0.1:" + host.port() + "\" }\n"
                    + "plain { listen = \"127.0.0.1:" + plain + "\", upstreams = \"127.0.0.1:" + host.port() + "\" }\n"
                    + "plainu { protocol = udp, listen = \"127.0.0.1:" + plain + "\", upstreams = \"127.0.0.1:"
                    + host.port() + "\" }\n");
            try {
                InetSocketAddress hostSide = new InetSocketAddress(Net.LOOPBACK, listen);
                // The backend is out of the host's reach by itself.
                try (Socket s = new Socket()) {
                    assertThrows(ConnectException.class,
                            () -> s.connect(new InetSocketAddress(Net.LOOPBACK, inside.port()), 2000));
                }
                for (int i = 0; i < 3; i++) {
                    assertEquals("inside", NamedBackend.tcpName(hostSide, 200_000));
                    try (DatagramSocket c = new DatagramSocket(new InetSocketAddress(Net.LOOPBACK, 0))) {
                        assertEquals("inside", NamedBackend.udpName(c, hostSide));
                    }
                    // One worker made the upstream sockets inside and went back: the next socket it
                    // makes for a host proxy is in the host again.
                    InetSocketAddress plainSide = new InetSocketAddress(Net.LOOPBACK, plain);
                    assertEquals("host", NamedBackend.tcpName(plainSide, 1000));
                    try (DatagramSocket c = new DatagramSocket(new InetSocketAddress(Net.LOOPBACK, 0))) {
                        assertEquals("host", NamedBackend.udpName(c, plainSide));
                    }
                    // A client inside the namespace reaches the host service through listen-netns.
                    assertEquals("host", Namespaces.in(ns, () -> NamedBackend.tcpName(hostSide, 200_000)));
                    DatagramSocket c = Namespaces.in(ns, () -> new DatagramSocket(new InetSocketAddress(Net.LOOPBACK, 0)));
                    try (c) {
                        assertEquals("host", NamedBackend.udpName(c, hostSide));
                    }
                }
            } finally {
                d.stop();
            }
        }
    }
}
