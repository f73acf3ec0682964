package dev.baton.relay;

import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketAddress;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The UDP relay over real loopback sockets, on every transport this machine has. */
class UdpRelayTest {
    @TempDir
    Path dir;

    /** Echoes each datagram prefixed with "echo:" and records the source each client id came from. */
    static final class Echo implements AutoCloseable {
        final DatagramSocket socket;
        final Map<String, Set<SocketAddress>> sources = new ConcurrentHashMap<>();

        Echo() throws IOException {
            socket = new DatagramSocket(new InetSocketAddress("127.0.0.1", 0));
            Thread t = new Thread(() -> {
                byte[] b = new byte[65536];
                while (!socket.isClosed()) {
                    try {
                        DatagramPacket p = new DatagramPacket(b, b.length);
                        socket.receive(p);
                        String s = new String(b, 0, p.getLength(), StandardCharsets.UTF_8);
                        sources.computeIfAbsent(s, k -> ConcurrentHashMap.newKeySet()).add(p.getSocketAddress());
                        byte[] r = ("echo:" + s).getBytes(StandardCharsets.UTF_8);
                        socket.send(new DatagramPacket(r, r.length, p.getSocketAddress()));
                    } catch (IOException e) {
                        return;
                    }
                }
            });
            t.setDaemon(true);
            t.start();
        }

        int port() {
            return socket.getLocalPort();
        }

        @Override
        public void close() {
            socket.close();
        }
    }

    private static String proxy(int listen, int upstream, String udp) {
        return " proxies { d { protocol = udp, listen = \"127.0.0.1:" + listen + "\", upstreams = \"127.0.0.1:"
                + upstream + "\", udp { " + udp + " } } }";
    }

    static String ask(DatagramSocket s, int port, String text) throws IOException {
        byte[] b = text.getBytes(StandardCharsets.UTF_8);
        s.send(new DatagramPacket(b, b.length, new InetSocketAddress("127.0.0.1", port)));
        byte[] r = new byte[65536];
        DatagramPacket p = new DatagramPacket(r, r.length);
        try {
            s.receive(p);
        } catch (SocketTimeoutException e) {
            return null;
        }
        assertEquals(port, p.getPort(), "reply comes from the listening address");
        return new String(r, 0, p.getLength(), StandardCharsets.UTF_8);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.baton.relay.Fixture#transports")
    void each_of_200_clients_gets_its_own_replies(String transport) throws Exception {
        try (Echo echo = new Echo()) {
            int port = Fixture.freeUdpPort();
            try (Fixture f = new Fixture(dir, transport, proxy(port, echo.port(), ""))) {
                List<DatagramSocket> clients = new ArrayList<>();
                try {
                    for (int i = 0; i < 200; i++) {
                        DatagramSocket s = new DatagramSocket(new InetSocketAddress("127.0.0.1", 0));
                        s.setSoTimeout(3000);
                        clients.add(s);
                    }
                    for (int round = 0; round < 3; round++) {
                        for (int i = 0; i < clients.size(); i++) {
                            assertEquals("echo:client-" + i, ask(clients.get(i), port, "client-" + i));
                        }
                    }
                } finally {
                    clients.forEach(DatagramSocket::close);
                }
                for (int i = 0; i < 200; i++) {
                    assertEquals(1, echo.sources.get("client-" + i).size(), "one upstream source per client");
                }
                assertEquals(200, f.daemon.udpProxy("d").stats().opened.sum());
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.baton.relay.Fixture#transports")
    void a_large_datagram_passes_whole(String transport) throws Exception {
        try (Echo echo = new Echo()) {
            int port = Fixture.freeUdpPort();
            try (Fixture f = new Fixture(dir, transport, proxy(port, echo.port(), ""));
                 DatagramSocket c = new DatagramSocket(new InetSocketAddress("127.0.0.1", 0))) {
                c.setSoTimeout(3000);
                String big = "x".repeat(60000);
                assertEquals("echo:" + big, ask(c, port, big));
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.baton.relay.Fixture#transports")
    void an_idle_flow_expires(String transport) throws Exception {
        try (Echo echo = new Echo()) {
            int port = Fixture.freeUdpPort();
            try (Fixture f = new Fixture(dir, transport, proxy(port, echo.port(), "flow-idle-timeout = 200ms"));
                 DatagramSocket c = new DatagramSocket(new InetSocketAddress("127.0.0.1", 0))) {
                c.setSoTimeout(3000);
                assertEquals("echo:a", ask(c, port, "a"));
                long deadline = System.nanoTime() + 5_000_000_000L;
                while (f.daemon.udpProxy("d").stats().active.get() > 0 && System.nanoTime() < deadline) {
                    Thread.sleep(20);
                }
                assertEquals(0, f.daemon.udpProxy("d").stats().active.get(), "flow expired");
                assertEquals("echo:b", ask(c, port, "b"));
                SocketAddress first = echo.sources.get("a").iterator().next();
                SocketAddress second = echo.sources.get("b").iterator().next();
                assertNotEquals(first, second, "a new flow has a new upstream socket");
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.baton.relay.Fixture#transports")
    void flows_beyond_max_flows_are_dropped_and_counted(String transport) throws Exception {
        try (Echo echo = new Echo()) {
            int port = Fixture.freeUdpPort();
            try (Fixture f = new Fixture(dir, transport, proxy(port, echo.port(), "max-flows = 5"))) {
                List<DatagramSocket> clients = new ArrayList<>();
                try {
                    for (int i = 0; i < 6; i++) {
                        DatagramSocket s = new DatagramSocket(new InetSocketAddress("127.0.0.1", 0));
                        s.setSoTimeout(i < 5 ? 3000 : 500);
                        clients.add(s);
                    }
                    for (int i = 0; i < 5; i++) {
                        assertEquals("echo:" + i, ask(clients.get(i), port, String.valueOf(i)));
                    }
                    assertNull(ask(clients.get(5), port, "5"), "the sixth client gets no flow");
                } finally {
                    clients.forEach(DatagramSocket::close);
                }
                assertTrue(f.daemon.udpProxy("d").stats().dropped.sum() >= 1);
                assertEquals(5, f.daemon.udpProxy("d").stats().active.get());
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.baton.relay.Fixture#transports")
    void tcp_and_udp_on_the_same_port_are_two_proxies(String transport) throws Exception {
        try (Echo echo = new Echo(); TcpRelayTest.Upstream tcp = new TcpRelayTest.Upstream(TcpRelayTest::echo)) {
            int port = Fixture.freeTcpPort();
            String body = " proxies {\n  t { listen = \"127.0.0.1:" + port + "\", upstreams = \"127.0.0.1:" + tcp.port()
                    + "\" }\n  u { protocol = udp, listen = \"127.0.0.1:" + port + "\", upstreams = \"127.0.0.1:"
                    + echo.port() + "\" }\n }";
            try (Fixture f = new Fixture(dir, transport, body);
                 DatagramSocket c = new DatagramSocket(new InetSocketAddress("127.0.0.1", 0));
                 Socket s = new Socket("127.0.0.1", port)) {
                c.setSoTimeout(3000);
                assertEquals("echo:udp", ask(c, port, "udp"));
                s.setSoTimeout(3000);
                s.getOutputStream().write("tcp".getBytes());
                byte[] b = new byte[3];
                new java.io.DataInputStream(s.getInputStream()).readFully(b);
                assertEquals("tcp", new String(b));
            }
        }
    }
}
