package dev.baton.relay;

import dev.baton.socket.Listener;
import dev.baton.socket.Transport;
import dev.baton.tcp.TcpConnection;
import io.netty.channel.Channel;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.zip.CRC32;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The TCP relay over real loopback sockets, on every transport this machine has. */
class TcpRelayTest {
    @TempDir
    Path dir;

    /** An upstream that runs {@code session} for each connection on its own thread. */
    static final class Upstream implements AutoCloseable {
        final ServerSocket server;

        interface Session {
            void run(Socket s) throws Exception;
        }

        Upstream(Session session) throws IOException {
            server = new ServerSocket();
            server.bind(new InetSocketAddress("127.0.0.1", 0));
            Thread t = new Thread(() -> {
                while (!server.isClosed()) {
                    try {
                        Socket s = server.accept();
                        Thread h = new Thread(() -> {
                            try (s) {
                                session.run(s);
                            } catch (Exception ignored) {
                                // the test's assertions tell
                            }
                        });
                        h.setDaemon(true);
                        h.start();
                    } catch (IOException e) {
                        return;
                    }
                }
            });
            t.setDaemon(true);
            t.start();
        }

        int port() {
            return server.getLocalPort();
        }

        @Override
        public void close() throws IOException {
            server.close();
        }
    }

    static void echo(Socket s) throws IOException {
        byte[] b = new byte[65536];
        InputStream in = s.getInputStream();
        OutputStream out = s.getOutputStream();
        int n;
        while ((n = in.read(b)) > 0) {
            out.write(b, 0, n);
        }
        s.shutdownOutput();
    }

    private String proxy(int listen, int... upstreams) {
        StringBuilder u = new StringBuilder();
        for (int p : upstreams) {
            u.append(u.length() == 0 ? "" : ", ").append("\"127.0.0.1:").append(p).append('"');
        }
        return " proxies { p { listen = \"127.0.0.1:" + listen + "\", upstreams = [" + u
                + "], tcp { connect-timeout = 1s, keepalive { idle = 17s, interval = 7s, count = 3 } } } }";
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.baton.relay.Fixture#transports")
    void relays_10_mb_each_way_intact(String transport) throws Exception {
        try (Upstream up = new Upstream(TcpRelayTest::echo)) {
            int port = Fixture.freeTcpPort();
            try (Fixture f = new Fixture(dir, transport, proxy(port, up.port()));
                 Socket c = new Socket("127.0.0.1", port)) {
                byte[] data = new byte[10 << 20];
                new Random(42).nextBytes(data);
                CompletableFuture<Void> writer = CompletableFuture.runAsync(() -> {
                    try {
                        c.getOutputStream().write(data);
                        c.shutdownOutput();
                    } catch (IOException e) {
                        throw new RuntimeException(e);
                    }
                });
                c.setSoTimeout(30000);
                byte[] back = c.getInputStream().readAllBytes();
                writer.get(30, TimeUnit.SECONDS);
                assertEquals(data.length, back.length);
                assertEquals(crc(data), crc(back));
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.baton.relay.Fixture#transports")
    void half_close_still_delivers_the_response(String transport) throws Exception {
        // The upstream reads the whole request (to EOF), then answers and closes.
        try (Upstream up = new Upstream(s -> {
            byte[] req = s.getInputStream().readAllBytes();
            s.getOutputStream().write(("got " + req.length + " bytes").getBytes());
        })) {
            int port = Fixture.freeTcpPort();
            try (Fixture f = new Fixture(dir, transport, proxy(port, up.port()));
                 Socket c = new Socket("127.0.0.1", port)) {
                c.setSoTimeout(10000);
                c.getOutputStream().write(new byte[12345]);
                c.shutdownOutput();
                assertEquals("got 12345 bytes", new String(c.getInputStream().readAllBytes()));
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.baton.relay.Fixture#transports")
    void a_reset_is_passed_on_as_a_reset(String transport) throws Exception {
        // Upstream resets the connection once it has read something.
        try (Upstream up = new Upstream(s -> {
            s.getInputStream().read();
            s.setSoLinger(true, 0);
            s.close();
        })) {
            int port = Fixture.freeTcpPort();
            try (Fixture f = new Fixture(dir, transport, proxy(port, up.port()));
                 Socket c = new Socket("127.0.0.1", port)) {
                c.setSoTimeout(10000);
                c.getOutputStream().write(1);
                SocketException e = assertThrows(SocketException.class, () -> {
                    // read until the reset arrives
                    while (c.getInputStream().read() >= 0) {
                        // nothing is sent
                    }
                    throw new AssertionError("clean EOF instead of a reset");
                });
                assertTrue(e.getMessage().contains("reset"), e.getMessage());
            }
        }
        // And the other way: the client resets, the upstream sees a reset.
        CompletableFuture<String> seen = new CompletableFuture<>();
        try (Upstream up = new Upstream(s -> {
            try {
                s.setSoTimeout(10000);
                s.getOutputStream().write(1);
                while (s.getInputStream().read() >= 0) {
                    // wait
                }
                seen.complete("eof");
            } catch (IOException e) {
                seen.complete(e.getMessage());
            }
        })) {
            int port = Fixture.freeTcpPort();
            try (Fixture f = new Fixture(dir, transport, proxy(port, up.port()))) {
                Socket c = new Socket("127.0.0.1", port);
                c.getInputStream().read();
                c.setSoLinger(true, 0);
                c.close();
                assertTrue(seen.get(10, TimeUnit.SECONDS).contains("reset"), seen.get());
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.baton.relay.Fixture#transports")
    void upstream_down_closes_the_client_and_failover_finds_the_next(String transport) throws Exception {
        int dead = Fixture.freeTcpPort();
        int port = Fixture.freeTcpPort();
        try (Fixture f = new Fixture(dir, transport, proxy(port, dead));
             Socket c = new Socket("127.0.0.1", port)) {
            c.setSoTimeout(5000);
            long start = System.nanoTime();
            assertEquals(-1, c.getInputStream().read(), "client closed");
            assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(3), "closed within connect-timeout");
            assertEquals(1, f.daemon.tcpProxy("p").stats().failed.sum());
        }
        try (Upstream up = new Upstream(TcpRelayTest::echo)) {
            port = Fixture.freeTcpPort();
            try (Fixture f = new Fixture(dir, transport, proxy(port, dead, up.port()))) {
                for (int i = 0; i < 4; i++) {
                    try (Socket c = new Socket("127.0.0.1", port)) {
                        c.setSoTimeout(5000);
                        c.getOutputStream().write("ping".getBytes());
                        byte[] b = new byte[4];
                        new java.io.DataInputStream(c.getInputStream()).readFully(b);
                        assertArrayEquals("ping".getBytes(), b);
                    }
                }
                assertEquals(0, f.daemon.tcpProxy("p").stats().failed.sum());
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.baton.relay.Fixture#transports")
    void a_client_that_does_not_read_stalls_the_upstream(String transport) throws Exception {
        AtomicLong pushed = new AtomicLong();
        long total = 1L << 30;
        try (Upstream up = new Upstream(s -> {
            byte[] chunk = new byte[65536];
            OutputStream out = s.getOutputStream();
            for (long sent = 0; sent < total; sent += chunk.length) {
                out.write(chunk);
                pushed.addAndGet(chunk.length);
            }
            s.shutdownOutput();
        })) {
            int port = Fixture.freeTcpPort();
            try (Fixture f = new Fixture(dir, transport, proxy(port, up.port()));
                 Socket c = new Socket("127.0.0.1", port)) {
                c.setReceiveBufferSize(65536);
                // Wait until the upstream's pushing levels off: it must stall, far short of 1 GB.
                long last = -1;
                for (int i = 0; i < 50 && pushed.get() != last; i++) {
                    last = pushed.get();
                    Thread.sleep(200);
                }
                long stalledAt = pushed.get();
                assertTrue(stalledAt < 64L << 20, "upstream pushed " + stalledAt + " bytes into a client that reads nothing");
                // Everything arrives once the client reads.
                c.setSoTimeout(60000);
                InputStream in = c.getInputStream();
                byte[] b = new byte[1 << 20];
                long got = 0;
                int n;
                while ((n = in.read(b)) > 0) {
                    got += n;
                }
                assertEquals(total, got);
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.baton.relay.Fixture#transports")
    void keepalive_and_nodelay_are_set_on_both_legs(String transport) throws Exception {
        try (Upstream up = new Upstream(TcpRelayTest::echo)) {
            int port = Fixture.freeTcpPort();
            try (Fixture f = new Fixture(dir, transport, proxy(port, up.port()));
                 Socket c = new Socket("127.0.0.1", port)) {
                c.getOutputStream().write(1);
                c.getInputStream().read();
                Transport t = f.daemon.transport();
                List<String> seen = new ArrayList<>();
                for (EventLoop loop : f.daemon.workers().loops()) {
                    loop.submit(() -> {
                        for (TcpConnection conn : f.daemon.connections().on(loop)) {
                            for (Channel ch : new Channel[] {conn.client(), conn.upstream()}) {
                                seen.add(ch.config().getOption(ChannelOption.SO_KEEPALIVE) + " "
                                        + ch.config().getOption(t.options().keepIdle()) + " "
                                        + ch.config().getOption(t.options().keepInterval()) + " "
                                        + ch.config().getOption(t.options().keepCount()) + " "
                                        + ch.config().getOption(ChannelOption.TCP_NODELAY));
                            }
                        }
                    }).sync();
                }
                assertEquals(List.of("true 17 7 3 true", "true 17 7 3 true"), seen);
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.baton.relay.Fixture#transports")
    void each_worker_gets_its_own_reuseport_socket(String transport) throws Exception {
        int port = Fixture.freeTcpPort();
        try (Fixture f = new Fixture(dir, transport.equals("nio") ? transport : transport,
                proxy(port, 1).replace("tcp {", "tcp { backlog = 511,"))) {
            Listener l = f.daemon.registry().all().iterator().next();
            int expected = f.daemon.transport().supportsReusePortAndHandoff() ? 2 : 1;
            assertEquals(expected, l.sockets().size());
            Process ss = new ProcessBuilder("ss", "-Hltn", "sport = :" + port).start();
            String out = new String(ss.getInputStream().readAllBytes());
            ss.waitFor();
            long lines = out.lines().filter(s -> s.contains(":" + port)).count();
            assertEquals(expected, lines, out);
            assertTrue(out.contains(" 511 "), "backlog shown by ss: " + out);
        }
    }

    private static long crc(byte[] b) {
        CRC32 c = new CRC32();
        c.update(b);
        return c.getValue();
    }

    static byte[] readAll(InputStream in) throws IOException {
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        in.transferTo(o);
        return o.toByteArray();
    }
}
