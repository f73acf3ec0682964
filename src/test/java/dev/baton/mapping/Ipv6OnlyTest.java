package dev.baton.mapping;

import dev.baton.config.ConfigException;
import dev.baton.config.ConfigLoader;
import dev.baton.daemon.Daemon;
import dev.baton.socket.ListenException;
import dev.baton.socket.Transport;
import dev.baton.testkit.NamedBackend;
import dev.baton.testkit.Net;
import dev.baton.testkit.Proxies;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * IPV6_V6ONLY on "[::]" listeners: with ipv6-only = true (the default) "[::]:P" and "0.0.0.0:P"
 * are two proxies, each getting only its own family's clients; with false, "[::]:P" takes both.
 * Real sockets over ::1 and 127.0.0.1, TCP and UDP, on every transport.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class Ipv6OnlyTest {
    private static final InetAddress V4 = Net.LOOPBACK;
    private static final InetAddress V6 = loopback6();

    @TempDir
    Path dir;

    static Stream<Transport> transports() {
        return Net.transports();
    }

    private static InetAddress loopback6() {
        try {
            return InetAddress.getByName("::1");
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A port free for TCP and UDP on both wildcards. */
    private static int freeWildcardPort() throws IOException {
        for (int attempt = 0; attempt < 100; attempt++) {
            int p = ThreadLocalRandom.current().nextInt(20000, 32000);
            try (ServerSocket a = new ServerSocket(p, 1, InetAddress.getByName("::"));
                 DatagramSocket b = new DatagramSocket(new InetSocketAddress(InetAddress.getByName("::"), p))) {
                return p;
            } catch (IOException e) {
                // taken
            }
        }
        throw new IOException("no free port");
    }

    private static String tcp(InetAddress a, int port) throws IOException {
        return NamedBackend.tcpName(new InetSocketAddress(a, port), 100_000);
    }

    private static String udp(InetAddress a, int port) throws IOException {
        try (DatagramSocket c = new DatagramSocket(new InetSocketAddress(a, 0))) {
            return NamedBackend.udpName(c, new InetSocketAddress(a, port));
        }
    }

    @ParameterizedTest
    @MethodSource("transports")
    void ipv6_wildcard_and_ipv4_wildcard_on_one_port_each_get_their_own_family(Transport t) throws Exception {
        int port = freeWildcardPort();
        int dualPort = freeWildcardPort();
        try (NamedBackend six = new NamedBackend("six", V4, 0);
             NamedBackend four = new NamedBackend("four", V4, 0);
             NamedBackend dual = new NamedBackend("dual", V4, 0)) {
            String proxies = ""
                    + "v6 { listen = \"[::]:" + port + "\", upstreams = \"127.0.0.1:" + six.port() + "\" }\n"
                    + "v6u { protocol = udp, listen = \"[::]:" + port + "\", upstreams = \"127.0.0.1:" + six.port() + "\" }\n"
                    + "v4 { listen = \"0.0.0.0:" + port + "\", upstreams = \"127.0.0.1:" + four.port() + "\" }\n"
                    + "v4u { protocol = udp, listen = \"0.0.0.0:" + port + "\", upstreams = \"127.0.0.1:" + four.port() + "\" }\n"
                    + "both { listen = \"[::]:" + dualPort + "\", ipv6-only = false, upstreams = \"127.0.0.1:"
                    + dual.port() + "\" }\n"
                    + "bothu { protocol = udp, listen = \"[::]:" + dualPort + "\", ipv6-only = false, upstreams = \"127.0.0.1:"
                    + dual.port() + "\" }\n";
            Daemon d = Proxies.start(dir, t, 2, proxies);
            try {
                for (int i = 0; i < 3; i++) {
                    assertEquals("six", tcp(V6, port));
                    assertEquals("four", tcp(V4, port));
                    assertEquals("six", udp(V6, port));
                    assertEquals("four", udp(V4, port));
                    assertEquals("dual", tcp(V6, dualPort));
                    assertEquals("dual", tcp(V4, dualPort));
                    assertEquals("dual", udp(V6, dualPort));
                    assertEquals("dual", udp(V4, dualPort));
                }

                // A reload that makes "[::]:P" dual-stack re-creates its sockets (IPV6_V6ONLY cannot
                // change on a bound socket): IPv4 clients reach it once the IPv4 proxy is gone.
                Path f = dir.resolve("reload.conf");
                Files.writeString(f, "baton {\n  transport = " + t.label() + "\n  workers = 2\n  drain-timeout = 0s\n"
                        + "  proxies {\n"
                        + "v6 { listen = \"[::]:" + port + "\", ipv6-only = false, upstreams = \"127.0.0.1:"
                        + six.port() + "\" }\n"
                        + "v6u { protocol = udp, listen = \"[::]:" + port + "\", ipv6-only = false, upstreams = \"127.0.0.1:"
                        + six.port() + "\" }\n  }\n}\n");
                if (!t.supportsReusePortAndHandoff()) {
                    // Without SO_REUSEPORT the new socket cannot be bound next to the old one: the
                    // reload is refused and the old configuration serves on (documented: restart).
                    ListenException e = assertThrows(ListenException.class, () -> d.reload(ConfigLoader.load(f)));
                    assertTrue(e.getMessage().endsWith("address already in use"), e.getMessage());
                    assertEquals("four", tcp(V4, port));
                    assertEquals("six", tcp(V6, port));
                    return;
                }
                d.reload(ConfigLoader.load(f));
                assertEquals("six", tcp(V4, port));
                assertEquals("six", tcp(V6, port));
                assertEquals("six", udp(V4, port));
                assertEquals("six", udp(V6, port));
            } finally {
                d.stop();
            }
        }
    }

    @Test
    void dual_stack_wildcard_next_to_an_ipv4_listener_on_its_port_is_refused() throws Exception {
        Path f = dir.resolve("dual.conf");
        Files.writeString(f, "baton.proxies {\n"
                + "  a { listen = \"0.0.0.0:8080\", upstreams = \"127.0.0.1:1\" }\n"
                + "  b {\n    listen = \"[::]:8080\"\n    ipv6-only = false\n    upstreams = \"127.0.0.1:2\"\n  }\n"
                + "  c { listen = \"[::]:8081\", ipv6-only = false, upstreams = \"127.0.0.1:3\" }\n"
                + "  d { listen = \"127.0.0.1:8081\", upstreams = \"127.0.0.1:4\" }\n"
                + "  e { protocol = udp, listen = \"127.0.0.1:8081\", upstreams = \"127.0.0.1:4\" }\n"
                + "  f { listen = \"[::]:8082\", ipv6-only = maybe, upstreams = \"127.0.0.1:4\" }\n"
                + "}\n");
        List<String> e = assertThrows(ConfigException.class, () -> ConfigLoader.load(f)).errors();
        assertEquals(List.of(
                f + ":4: baton.proxies.b.listen: tcp [::]:8080 with ipv6-only = false would take the IPv4 clients "
                        + "of proxy 'a' on port 8080; set ipv6-only = true",
                f + ":9: baton.proxies.d.listen: tcp 127.0.0.1:8081: proxy 'c' takes IPv4 clients of port 8081 "
                        + "on [::] (ipv6-only = false); set ipv6-only = true there",
                f + ":11: baton.proxies.f.ipv6-only: must be true or false"), e);
    }
}
