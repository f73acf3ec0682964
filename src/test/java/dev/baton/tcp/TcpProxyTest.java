package dev.baton.tcp;

import dev.baton.daemon.Daemon;
import dev.baton.socket.Transport;
import dev.baton.testkit.EchoServer;
import dev.baton.testkit.Net;
import dev.baton.testkit.NothingLeft;
import dev.baton.testkit.Proxies;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** TCP relay over real loopback sockets, for every transport this machine has. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class TcpProxyTest {
    @TempDir
    Path dir;

    static java.util.stream.Stream<Transport> transports() {
        return Net.transports();
    }

    private static String proxy(String name, int listen, String upstreams, String extra) {
        return name + " { protocol = tcp, listen = \"127.0.0.1:" + listen + "\", upstreams = " + upstreams
                + (extra == null ? "" : ", " + extra) + " }\n";
    }

    private static Socket connect(int port) throws IOException {
        Socket s = new Socket();
        s.connect(new InetSocketAddress(Net.LOOPBACK, port), 5000);
        s.setSoTimeout(30_000);
        return s;
    }

    /** {@code n} connections in a row, each sending a line and its FIN: each gets the line back, then the end. */
    private static void echoes(int port, int n) throws IOException {
        for (int i = 0; i < n; i++) {
            try (Socket s = connect(port)) {
                byte[] msg = ("hello " + i).getBytes(StandardCharsets.US_ASCII);
                s.getOutputStream().write(msg);
                s.shutdownOutput();
                assertArrayEquals(msg, s.getInputStream().readAllBytes());
            }
        }
    }

    /**
     * A listener that accepts nothing (until a test makes it) and whose accept queue is full:
     * Linux then drops new SYNs, so a connect to it gets no answer.
     */
    private static final class SilentUpstream implements AutoCloseable {
        final ServerSocket server = new ServerSocket(0, 1, Net.LOOPBACK);
        private final java.util.List<Socket> queued = new java.util.ArrayList<>();

        SilentUpstream() throws IOException {
            while (true) { // connect until a connect gets no answer: the queue is full from then on
                Socket q = new Socket();
                queued.add(q);
                try {
                    q.connect(new InetSocketAddress(Net.LOOPBACK, server.getLocalPort()), 300);
                } catch (SocketTimeoutException e) {
                    return;
                }
            }
        }

        String address() {
            return "127.0.0.1:" + server.getLocalPort();
        }

        @Override
        public void close() throws IOException {
            for (Socket q : queued) {
                q.close();
            }
            server.close();
        }
    }

    @ParameterizedTest
    @MethodSource("transports")
    void anIpv6UpstreamServesAnIpv4Listener(Transport t) throws Exception {
        try (dev.baton.testkit.NamedBackend six = new dev.baton.testkit.NamedBackend("six",
                java.net.InetAddress.getByName("::1"), 0)) {
            int port = Net.freePort();
            Daemon d = Proxies.start(dir, t, 2, proxy("p", port, "\"[::1]:" + six.port() + "\"", null));
            try {
                for (int i = 0; i < 5; i++) {
                    assertEquals("six", dev.baton.testkit.NamedBackend.tcpName(
                            new InetSocketAddress(Net.LOOPBACK, port), 100_000));
                }
            } finally {
                d.stop();
            }
        }
    }

    @ParameterizedTest
    @MethodSource("transports")
    void echoes10MbEachWayConcurrentlyWithChecksums(Transport t) throws Exception {
        try (EchoServer up = EchoServer.echo()) {
            int port = Net.freePort();
            Daemon d = Proxies.start(dir, t, 2, proxy("p", port, "\"127.0.0.1:" + up.port() + "\"", null));
            try (Socket s = connect(port)) {
                int size = 10 * 1024 * 1024;
                byte[] data = new byte[size];
                new Random(42).nextBytes(data);
                CRC32 sent = new CRC32();
                sent.update(data);
                CompletableFuture<Void> writer = CompletableFuture.runAsync(() -> {
                    try {
                        OutputStream out = s.getOutputStream();
                        for (int off = 0; off < size; off += 65536) {
                            out.write(data, off, Math.min(65536, size - off));
                        }
                        s.shutdownOutput();
                    } catch (IOException e) {
                        throw new RuntimeException(e);
                    }
                });
                CRC32 got = new CRC32();
                long total = 0;
                InputStream in = s.getInputStream();
                byte[] buf = new byte[65536];
                int n;
                while ((n = in.read(buf)) >= 0) {
                    got.update(buf, 0, n);
                    total += n;
                }
                writer.get(30, TimeUnit.SECONDS);
                assertEquals(size, total, "bytes echoed back");
                assertEquals(sent.getValue(), got.getValue(), "CRC32 of the echo");
            } finally {
                d.stop();
            }
        }
    }

    @ParameterizedTest
    @MethodSource("transports")
    void halfCloseStillDeliversTheResponse(Transport t) throws Exception {
        // Upstream reads to EOF, then answers with the byte count and closes.
        try (EchoServer up = new EchoServer(s -> {
            InputStream in = s.getInputStream();
            long count = 0;
            byte[] buf = new byte[8192];
            int n;
            while ((n = in.read(buf)) >= 0) {
                count += n;
            }
            s.getOutputStream().write(("got " + count).getBytes(StandardCharsets.US_ASCII));
        })) {
            int port = Net.freePort();
            Daemon d = Proxies.start(dir, t, 1, proxy("p", port, "\"127.0.0.1:" + up.port() + "\"", null));
            try (Socket s = connect(port)) {
                s.getOutputStream().write(new byte[100_000]);
                s.shutdownOutput();
                byte[] reply = s.getInputStream().readAllBytes();
                assertEquals("got 100000", new String(reply, StandardCharsets.US_ASCII));
            } finally {
                d.stop();
            }
        }
    }

    @ParameterizedTest
    @MethodSource("transports")
    void upstreamResetReachesTheClient(Transport t) throws Exception {
        try (EchoServer up = new EchoServer(s -> {
            s.getInputStream().read();
            s.setSoLinger(true, 0);
            s.close();
        })) {
            int port = Net.freePort();
            Daemon d = Proxies.start(dir, t, 1, proxy("p", port, "\"127.0.0.1:" + up.port() + "\"", null));
            try (Socket s = connect(port)) {
                s.getOutputStream().write(1);
                IOException e = assertThrows(IOException.class, () -> {
                    // a reset shows up on read, or on a write after it
                    for (int i = 0; i < 100; i++) {
                        if (s.getInputStream().read() < 0) {
                            s.getOutputStream().write(new byte[1024]);
                        }
                    }
                });
                assertTrue(e instanceof SocketException && String.valueOf(e.getMessage()).contains("reset"),
                        "expected a connection reset, got " + e);
            } finally {
                d.stop();
            }
        }
    }

    @ParameterizedTest
    @MethodSource("transports")
    void clientResetReachesTheUpstream(Transport t) throws Exception {
        CompletableFuture<String> seen = new CompletableFuture<>();
        try (EchoServer up = new EchoServer(s -> {
            s.setSoTimeout(20_000);
            try {
                s.getOutputStream().write(1);
                int r = s.getInputStream().read();
                seen.complete(r < 0 ? "eof" : "data " + r);
            } catch (IOException e) {
                seen.complete(String.valueOf(e.getMessage()));
            }
        })) {
            int port = Net.freePort();
            Daemon d = Proxies.start(dir, t, 1, proxy("p", port, "\"127.0.0.1:" + up.port() + "\"", null));
            try {
                Socket s = connect(port);
                assertEquals(1, s.getInputStream().read(), "relay is up");
                s.setSoLinger(true, 0);
                s.close();
                String r = seen.get(20, TimeUnit.SECONDS);
                assertTrue(r.equals("eof") || r.contains("reset"), "upstream saw EOF or reset, got " + r);
            } finally {
                d.stop();
            }
        }
    }

    @ParameterizedTest
    @MethodSource("transports")
    void refusedUpstreamClosesClientWithinConnectTimeout(Transport t) throws Exception {
        int refused = Net.freePort();
        int port = Net.freePort();
        Daemon d = Proxies.start(dir, t, 1, proxy("p", port, "\"127.0.0.1:" + refused + "\"",
                "tcp { connect-timeout = 1s }"));
        try (Socket s = connect(port)) {
            long start = System.nanoTime();
            s.setSoTimeout(3_000); // connect-timeout + 2s
            int r;
            try {
                r = s.getInputStream().read();
            } catch (SocketException e) {
                r = -1; // reset is also a close
            }
            assertEquals(-1, r, "client closed");
            assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(3));
        } finally {
            d.stop();
        }
    }

    /**
     * An upstream that never answers a SYN: a listener that accepts nothing and whose accept queue
     * is full (Linux then drops new SYNs). baton's own connect timeout must give up on it and fail
     * over to the next upstream; without the timeout these connections would hang.
     */
    @ParameterizedTest
    @MethodSource("transports")
    void connectTimeoutFailsOverFromAnUpstreamThatNeverAnswers(Transport t) throws Exception {
        try (SilentUpstream silent = new SilentUpstream(); EchoServer up = EchoServer.echo()) {
            int port = Net.freePort();
            Daemon d = Proxies.start(dir, t, 1, proxy("p", port, "[\"" + silent.address()
                    + "\", \"127.0.0.1:" + up.port() + "\"]", "tcp { connect-timeout = 1s }"));
            try {
                echoes(port, 2); // round-robin: one of the two starts with the silent one
            } finally {
                d.stop();
            }
        }
    }

    /**
     * A client that sends its first bytes and resets while its upstream's connect is still
     * pending: when the connect gives up, nothing of the client is left, in particular not the
     * buffer holding those first bytes (the build's leak detector tracks every buffer).
     */
    @ParameterizedTest
    @MethodSource("transports")
    void aClientThatResetsWhileItsUpstreamConnectsLeavesNoBuffer(Transport t) throws Exception {
        try (SilentUpstream silent = new SilentUpstream()) {
            int port = Net.freePort();
            Daemon d = Proxies.start(dir, t, 1, proxy("p", port, "\"" + silent.address() + "\"",
                    "tcp { connect-timeout = 500ms }"));
            try {
                NothingLeft nothingLeft = new NothingLeft();
                for (int i = 0; i < 3; i++) {
                    Socket c = connect(port);
                    c.getOutputStream().write(("first bytes " + i).getBytes(StandardCharsets.US_ASCII));
                    Thread.sleep(100); // accepted, bytes read, connect pending
                    c.setSoLinger(true, 0);
                    c.close(); // RST
                }
                nothingLeft.check(d.tcpProxy("p"));
            } finally {
                d.stop();
            }
        }
    }

    /**
     * Clients that reset at any moment (before sending, right after, while the answer streams
     * back): every connection is gone afterwards and no buffer is left, while a well-behaved
     * client is still served.
     */
    @ParameterizedTest
    @MethodSource("transports")
    void clientsThatResetAtAnyMomentLeaveNothingBehind(Transport t) throws Exception {
        try (EchoServer up = EchoServer.echo()) {
            int port = Net.freePort();
            Daemon d = Proxies.start(dir, t, 2, proxy("p", port, "\"127.0.0.1:" + up.port() + "\"", null));
            try {
                NothingLeft nothingLeft = new NothingLeft();
                Random random = new Random(7);
                byte[] data = new byte[256 * 1024];
                random.nextBytes(data);
                for (int i = 0; i < 300; i++) {
                    Socket c = new Socket();
                    c.connect(new InetSocketAddress(Net.LOOPBACK, port), 5000);
                    switch (i % 4) {
                        case 0 -> { } // nothing sent
                        case 1 -> c.getOutputStream().write(data, 0, 100);
                        case 2 -> { // a large write, its echo partly read
                            c.getOutputStream().write(data, 0, 64 * 1024);
                            c.getInputStream().readNBytes(1000);
                        }
                        default -> Thread.sleep(random.nextInt(3));
                    }
                    c.setSoLinger(true, 0);
                    c.close();
                }
                echoes(port, 3);
                nothingLeft.check(d.tcpProxy("p"));
            } finally {
                d.stop();
            }
        }
    }

    /**
     * An upstream that resets connections at any moment (at once, after reading, after sending an
     * answer): each client sees its connection end, and nothing is left behind. On io_uring,
     * Netty 4.2.18 mostly misses a reset that follows data (docs/transports.md); there the
     * documented fallback is checked instead: tcp.idle-timeout ends such a connection.
     */
    @ParameterizedTest
    @MethodSource("transports")
    void anUpstreamThatResetsAtAnyMomentLeavesNothingBehind(Transport t) throws Exception {
        java.util.concurrent.atomic.AtomicInteger n = new java.util.concurrent.atomic.AtomicInteger();
        byte[] answer = new byte[256 * 1024];
        try (EchoServer up = new EchoServer(s -> {
            int i = n.getAndIncrement();
            s.setSoLinger(true, 0); // close() resets
            if (i % 3 == 1) {
                s.getInputStream().readNBytes(10);
            } else if (i % 3 == 2) {
                s.getInputStream().readNBytes(10);
                s.getOutputStream().write(answer, 0, 100 * 1024);
            }
        })) {
            boolean uring = t == Transport.IO_URING;
            int port = Net.freePort();
            Daemon d = Proxies.start(dir, t, 2, proxy("p", port, "\"127.0.0.1:" + up.port() + "\"",
                    uring ? "tcp { idle-timeout = 1s }" : null));
            try {
                NothingLeft nothingLeft = new NothingLeft();
                for (int i = 0; i < (uring ? 6 : 90); i++) {
                    long start = System.nanoTime();
                    try (Socket c = connect(port)) {
                        c.setSoTimeout(5_000);
                        c.getOutputStream().write(new byte[100]);
                        c.getInputStream().readAllBytes(); // ends: by EOF or by a reset
                    } catch (SocketException e) {
                        // the upstream's reset, passed on
                    }
                    assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(4), "connection " + i + " ended late");
                }
                nothingLeft.check(d.tcpProxy("p"));
            } finally {
                d.stop();
            }
        }
    }

    /**
     * An upstream that is down fails every client, but the log gets one line per 10 s for the
     * proxy (with the count of the others at debug level), not one per client; every client is
     * still counted as failed.
     */
    @ParameterizedTest
    @MethodSource("transports")
    void aDownUpstreamIsLoggedOncePerTenSecondsNotPerClient(Transport t) throws Exception {
        int refused = Net.freePort();
        int port = Net.freePort();
        ch.qos.logback.classic.Logger logger = (ch.qos.logback.classic.Logger) org.slf4j.LoggerFactory
                .getLogger(TcpProxy.class);
        ch.qos.logback.core.read.ListAppender<ch.qos.logback.classic.spi.ILoggingEvent> lines =
                new ch.qos.logback.core.read.ListAppender<>();
        lines.start();
        logger.addAppender(lines);
        Daemon d = Proxies.start(dir, t, 1, proxy("p", port, "\"127.0.0.1:" + refused + "\"", null));
        try {
            for (int i = 0; i < 5; i++) {
                try (Socket s = connect(port)) {
                    s.setSoTimeout(5_000);
                    assertEquals(-1, s.getInputStream().read(), "closed");
                } catch (SocketException e) {
                    // a reset is also a close
                }
            }
            assertEquals(5, d.tcpProxy("p").stats().failed.sum(), "every client counted");
            long warnings = lines.list.stream()
                    .filter(e -> e.getLevel() == ch.qos.logback.classic.Level.WARN
                            && e.getFormattedMessage().contains("no upstream reachable"))
                    .count();
            assertEquals(1, warnings, lines.list.toString());
        } finally {
            logger.detachAppender(lines);
            d.stop();
        }
    }

    @ParameterizedTest
    @MethodSource("transports")
    void failsOverToTheSecondUpstream(Transport t) throws Exception {
        int refused = Net.freePort();
        try (EchoServer up = EchoServer.echo()) {
            int port = Net.freePort();
            Daemon d = Proxies.start(dir, t, 1, proxy("p", port,
                    "[\"127.0.0.1:" + refused + "\", \"127.0.0.1:" + up.port() + "\"]", "tcp { connect-timeout = 2s }"));
            try {
                echoes(port, 3);
            } finally {
                d.stop();
            }
        }
    }

    /**
     * An upstream whose handshake does not complete inside connect(2) (here: its accept queue is
     * full, so its SYNs go unanswered until it starts accepting) is connected the usual way: the
     * client's bytes reach it once it answers, and later connections to it relay as well. On
     * epoll, baton first tries to connect in place, gives that up for this upstream, and connects
     * through the channel; the queued connect must not be lost on the way.
     */
    @ParameterizedTest
    @MethodSource("transports")
    void anUpstreamThatAnswersLateIsConnectedTheUsualWay(Transport t) throws Exception {
        try (SilentUpstream silent = new SilentUpstream()) {
            ServerSocket slow = silent.server;
            int port = Net.freePort();
            Daemon d = Proxies.start(dir, t, 1, proxy("p", port, "\"" + silent.address() + "\"",
                    "tcp { connect-timeout = 10s }"));
            try (Socket c = connect(port)) {
                c.getOutputStream().write("early".getBytes(StandardCharsets.US_ASCII));
                Thread.sleep(300); // baton's connect is waiting for an answer now
                Thread server = new Thread(() -> {
                    while (!slow.isClosed()) {
                        try {
                            Socket s = slow.accept();
                            Thread echo = new Thread(() -> {
                                try (s) {
                                    s.getInputStream().transferTo(s.getOutputStream());
                                } catch (IOException ignored) {
                                    // the queued sockets close at the end of the test
                                }
                            });
                            echo.setDaemon(true);
                            echo.start();
                        } catch (IOException e) {
                            return;
                        }
                    }
                });
                server.setDaemon(true);
                server.start();
                c.shutdownOutput();
                assertArrayEquals("early".getBytes(StandardCharsets.US_ASCII), c.getInputStream().readAllBytes());
                echoes(port, 3);
            } finally {
                d.stop();
            }
        }
    }
}
