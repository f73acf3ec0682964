package dev.baton.daemon;

import dev.baton.config.ConfigLoader;
import dev.baton.config.Protocol;
import dev.baton.socket.ListenerKey;
import dev.baton.socket.Transport;
import dev.baton.testkit.EchoServer;
import dev.baton.testkit.Net;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `map add|rm|ls` on an in-process daemon: real sockets, the real mappings file. */
class MapperTest {
    @TempDir
    Path dir;

    private Daemon daemon;
    private Mapper mapper;
    private Path file;
    private int webPort;

    static Stream<Transport> transports() {
        return Net.transports();
    }

    private void start(Transport t, int upstream) throws Exception {
        webPort = Net.freePort();
        Path cfg = Net.writeConfig(dir, "baton.conf", "baton {\n  transport = " + t.label()
                + "\n  workers = 2\n  drain-timeout = 0s\n  state-dir = \"state\"\n  proxies {\n"
                + "    web { listen = \"127.0.0.1:" + webPort + "\", upstreams = \"127.0.0.1:" + upstream + "\" }\n"
                + "  }\n}\n");
        daemon = new Daemon(ConfigLoader.load(cfg));
        daemon.start();
        mapper = new Mapper(daemon);
        file = dir.resolve("state/mappings.conf");
    }

    @AfterEach
    void stop() {
        if (daemon != null) {
            daemon.stop();
        }
    }

    @ParameterizedTest
    @MethodSource("transports")
    void add_relays_ls_shows_rm_closes_and_the_file_follows(Transport t) throws Exception {
        try (EchoServer echo = EchoServer.echo(); DatagramSocket udpEcho = udpEcho()) {
            start(t, echo.port());
            int tcp = Net.freePort();
            int udp = Net.freePort();
            assertEquals("OK added db: tcp 127.0.0.1:" + tcp + " -> 127.0.0.1:" + echo.port() + "\n",
                    mapper.handle("map add tcp 127.0.0.1:" + tcp + " 127.0.0.1:" + echo.port() + " db"));
            assertEquals("hello", tcpEcho(tcp, "hello"));
            String answer = mapper.handle("map add udp 127.0.0.1:" + udp + " 127.0.0.1:" + udpEcho.getLocalPort());
            assertEquals("OK added udp-127.0.0.1-" + udp + ": udp 127.0.0.1:" + udp + " -> 127.0.0.1:"
                    + udpEcho.getLocalPort() + "\n", answer);
            assertEquals("ping", udpRoundTrip(udp, "ping"));

            String ls = mapper.handle("map ls");
            List<String> lines = ls.lines().toList();
            assertEquals(List.of("NAME", "PROTO", "LISTEN", "UPSTREAMS", "ORIGIN"), List.of(lines.get(0).split("\\s+")));
            assertEquals(List.of("web", "tcp", "127.0.0.1:" + webPort, "127.0.0.1:" + echo.port(), "config"),
                    List.of(lines.get(1).split("\\s+")));
            assertEquals(List.of("db", "tcp", "127.0.0.1:" + tcp, "127.0.0.1:" + echo.port(), "runtime"),
                    List.of(lines.get(2).split("\\s+")));
            assertEquals(List.of("udp-127.0.0.1-" + udp, "udp", "127.0.0.1:" + udp,
                    "127.0.0.1:" + udpEcho.getLocalPort(), "runtime"), List.of(lines.get(3).split("\\s+")));
            assertEquals(4, lines.size(), ls);

            // What a restart would read is what runs.
            assertEquals(daemon.config().proxies(), ConfigLoader.load(daemon.config().source()).proxies());

            assertEquals("OK removed db (1 listen address closed)\n", mapper.handle("map rm db"));
            assertTrue(stopsAccepting(tcp), "removed mapping no longer listens");
            assertEquals("hello", tcpEcho(webPort, "hello"), "the configured proxy is untouched");
            assertEquals("OK removed udp-127.0.0.1-" + udp + " (1 listen address closed)\n",
                    mapper.handle("map rm udp 127.0.0.1:" + udp));
            assertEquals(List.of("web"), List.copyOf(ConfigLoader.load(daemon.config().source()).proxies().keySet()));
            assertEquals(2, mapper.handle("map ls").lines().count());
        }
    }

    @Test
    void a_range_that_cannot_bind_one_port_leaves_nothing_bound_and_the_file_unchanged() throws Exception {
        try (EchoServer echo = EchoServer.echo()) {
            start(Net.transports().findFirst().orElseThrow(), echo.port());
            assertTrue(mapper.handle("map add tcp 127.0.0.1:" + Net.freePort() + " 127.0.0.1:1 first").startsWith("OK"));
            byte[] before = Files.readAllBytes(file);
            int base = freeRange(60);
            try (ServerSocket taken = new ServerSocket()) {
                taken.bind(new InetSocketAddress(Net.LOOPBACK, base + 57));
                String answer = mapper.handle("map add tcp 127.0.0.1:" + base + "-" + (base + 59) + " 127.0.0.1:"
                        + echo.port() + " range");
                assertEquals("FAIL cannot listen on tcp 127.0.0.1:" + (base + 57) + ": address already in use\n", answer);
            }
            for (int p = base; p < base + 60; p++) {
                assertNull(daemon.registry().get(new ListenerKey(Protocol.TCP, new InetSocketAddress("127.0.0.1", p))));
                try (ServerSocket s = new ServerSocket()) {
                    s.bind(new InetSocketAddress(Net.LOOPBACK, p)); // free again: nothing of the range stayed bound
                }
            }
            assertEquals(new String(before), Files.readString(file), "the mappings file is unchanged");
            assertFalse(daemon.config().proxies().keySet().stream().anyMatch(n -> n.startsWith("range")));
            assertEquals(3, mapper.handle("map ls").lines().count());

            // With the port free, the same range maps port by port.
            String ok = mapper.handle("map add tcp 127.0.0.1:" + base + "-" + (base + 59) + " 127.0.0.1:"
                    + echo.port() + " range");
            assertTrue(ok.startsWith("OK added range") && ok.contains("(60 ports)"), ok);
            assertEquals("x", tcpEcho(base + 57, "x"));
            assertEquals("FAIL 'range:" + (base + 3) + "' is one port of the runtime mapping 'range'; remove the whole "
                    + "mapping: map rm range\n", mapper.handle("map rm range:" + (base + 3)));
            assertTrue(mapper.handle("map rm tcp 127.0.0.1:" + (base + 3)).contains("is part of the runtime mapping "
                    + "'range'"));
            assertTrue(mapper.handle("map rm tcp 127.0.0.1:" + base + "-" + (base + 59)).startsWith("OK removed range"));
            assertTrue(stopsAccepting(base + 57));
        }
    }

    @Test
    void refused_requests_say_why_in_one_line_and_change_nothing() throws Exception {
        try (EchoServer echo = EchoServer.echo()) {
            start(Net.transports().findFirst().orElseThrow(), echo.port());
            int port = Net.freePort();
            assertTrue(mapper.handle("map add tcp 127.0.0.1:" + port + " 127.0.0.1:1 db").startsWith("OK"));
            byte[] before = Files.readAllBytes(file);
            var proxies = daemon.config().proxies();
            int other = Net.freePort();
            String[][] refused = {
                    {"map add tcp 127.0.0.1:" + other + " 127.0.0.1:1 db", "a runtime mapping named 'db' exists already"},
                    {"map add tcp 127.0.0.1:" + other + " 127.0.0.1:1 web",
                            "the configuration file has a proxy named 'web' already"},
                    {"map add tcp 127.0.0.1:" + webPort + " 127.0.0.1:1",
                            "tcp 127.0.0.1:" + webPort + " is already a listen address of proxy 'web'"},
                    {"map add tcp 127.0.0.1:" + port + " 127.0.0.1:1 db2",
                            "tcp 127.0.0.1:" + port + " is already a listen address of proxy 'db'"},
                    {"map add tcp 127.0.0.1:70000 127.0.0.1:1", "port 70000 is out of range 1-65535"},
                    {"map add tcp localhost:" + other + " 127.0.0.1:1 x", "listen host must be an IP address"},
                    {"map add tcp 127.0.0.1:" + other + "-" + (other + 2) + " 127.0.0.1:1-2 x",
                            "an upstream port range must be as long as the listen range (3 ports), not 2"},
                    {"map add sctp 127.0.0.1:" + other + " 127.0.0.1:1", "protocol 'sctp' is not one of tcp, udp"},
                    {"map add tcp 127.0.0.1:" + other + " 127.0.0.1:1 bad\"name", "name 'bad\"name'"},
                    {"map rm nope", "no runtime mapping named 'nope'"},
                    {"map rm web", "'web' is a proxy of the configuration file"},
                    {"map rm tcp 127.0.0.1:" + webPort, "belongs to proxy 'web' of the configuration file"},
                    {"map frobnicate", "usage: map add"},
            };
            for (String[] r : refused) {
                String answer = mapper.handle(r[0]);
                assertTrue(answer.startsWith("FAIL ") && answer.contains(r[1]), r[0] + " -> " + answer);
                assertEquals(1, answer.lines().count(), answer);
                assertEquals(proxies, daemon.config().proxies(), r[0]);
                assertEquals(new String(before), Files.readString(file), r[0]);
            }
            assertFalse(accepts(other));
        }
    }

    @Test
    void a_mapping_that_cannot_be_saved_is_not_added() throws Exception {
        try (EchoServer echo = EchoServer.echo()) {
            start(Net.transports().findFirst().orElseThrow(), echo.port());
            Files.writeString(dir.resolve("state"), "a file where the state directory should be");
            int port = Net.freePort();
            String answer = mapper.handle("map add tcp 127.0.0.1:" + port + " 127.0.0.1:" + echo.port());
            assertTrue(answer.startsWith("FAIL cannot save " + file + " (") && answer.endsWith(
                    "); the mapping was not added\n"), answer);
            assertTrue(stopsAccepting(port), "the listener opened for it is closed again");
            assertNull(daemon.registry().get(new ListenerKey(Protocol.TCP, new InetSocketAddress("127.0.0.1", port))));
            assertEquals(2, mapper.handle("map ls").lines().count());
        }
    }

    @Test
    void default_names() {
        assertEquals("tcp-8080", Mapper.defaultName("tcp", "0.0.0.0:8080"));
        assertEquals("udp-8000-8099", Mapper.defaultName("udp", "*:8000-8099"));
        assertEquals("tcp-127.0.0.1-8080", Mapper.defaultName("tcp", "127.0.0.1:8080"));
        assertEquals("tcp-[::]-8080", Mapper.defaultName("tcp", "[::]:8080"));
    }

    /** A run of {@code n} consecutive ports that are free now on 127.0.0.1. */
    static int freeRange(int n) throws IOException {
        for (int attempt = 0; attempt < 100; attempt++) {
            // Below the ephemeral ports (32768+), which the clients' own connections keep taking.
            int base = ThreadLocalRandom.current().nextInt(10000, 32000 - n);
            List<ServerSocket> held = new ArrayList<>();
            try {
                for (int p = base; p < base + n; p++) {
                    ServerSocket s = new ServerSocket();
                    held.add(s);
                    s.bind(new InetSocketAddress(Net.LOOPBACK, p));
                }
                return base;
            } catch (IOException busy) {
                // try another base
            } finally {
                for (ServerSocket s : held) {
                    s.close();
                }
            }
        }
        throw new IOException("no run of " + n + " free ports");
    }

    private static DatagramSocket udpEcho() throws IOException {
        DatagramSocket s = new DatagramSocket(new InetSocketAddress(Net.LOOPBACK, 0));
        Thread t = new Thread(() -> {
            byte[] buf = new byte[2048];
            while (!s.isClosed()) {
                try {
                    DatagramPacket p = new DatagramPacket(buf, buf.length);
                    s.receive(p);
                    s.send(new DatagramPacket(p.getData(), p.getLength(), p.getSocketAddress()));
                } catch (IOException e) {
                    return;
                }
            }
        }, "udp-echo");
        t.setDaemon(true);
        t.start();
        return s;
    }

    static String tcpEcho(int port, String text) throws IOException {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(Net.LOOPBACK, port), 5000);
            s.setSoTimeout(5000);
            s.getOutputStream().write(text.getBytes(StandardCharsets.US_ASCII));
            s.shutdownOutput();
            return new String(s.getInputStream().readAllBytes(), StandardCharsets.US_ASCII);
        }
    }

    static String udpRoundTrip(int port, String text) throws IOException {
        try (DatagramSocket c = new DatagramSocket(new InetSocketAddress(Net.LOOPBACK, 0))) {
            c.setSoTimeout(5000);
            byte[] b = text.getBytes(StandardCharsets.US_ASCII);
            c.send(new DatagramPacket(b, b.length, new InetSocketAddress(Net.LOOPBACK, port)));
            DatagramPacket r = new DatagramPacket(new byte[100], 100);
            c.receive(r);
            return new String(r.getData(), 0, r.getLength(), StandardCharsets.US_ASCII);
        }
    }

    /**
     * Whether the port stops accepting within 5 s: nio closes a listening socket's descriptor
     * only at its event loop's next select, a moment after the close completed.
     */
    static boolean stopsAccepting(int port) throws InterruptedException {
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (accepts(port)) {
            if (System.nanoTime() > deadline) {
                return false;
            }
            Thread.sleep(20);
        }
        return true;
    }

    static boolean accepts(int port) {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(Net.LOOPBACK, port), 1000);
            return true;
        } catch (IOException e) {
            return false;
        }
    }
}
