package dev.baton.tcp;

import dev.baton.daemon.Daemon;
import dev.baton.socket.Transport;
import dev.baton.testkit.EchoServer;
import dev.baton.testkit.Net;
import dev.baton.testkit.Proxies;
import dev.baton.upstream.Upstream;
import io.netty.channel.EventLoop;
import io.netty.channel.epoll.Epoll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The raw phase's edges: half-closes before a move, resets, idle, drain, failover, accounting. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class RawPhaseEdgeTest {
    @TempDir
    Path dir;

    @BeforeEach
    void epollOnly() {
        assumeTrue(Epoll.isAvailable(), "the raw phase is an epoll feature");
        assumeTrue(TcpProxy.RAW, "turned off with -Dbaton.tcp.raw=false");
    }

    private Daemon start(int port, String upstreams, String extra) throws Exception {
        return Proxies.start(dir, Transport.EPOLL, 1, "p { listen = \"127.0.0.1:" + port + "\", upstreams = "
                + upstreams + extra + " }\n");
    }

    private static String one(int port) {
        return "\"127.0.0.1:" + port + "\"";
    }

    private static Socket connect(int port) throws IOException {
        Socket s = new Socket();
        s.connect(new InetSocketAddress(Net.LOOPBACK, port), 5000);
        s.setSoTimeout(10_000);
        return s;
    }

    /** Waits until this process holds no more descriptors than {@code before}. */
    private static void awaitDescriptorsBackTo(long before) throws InterruptedException {
        await(() -> {
            try {
                return fds() <= before;
            } catch (IOException e) {
                return false;
            }
        }, "descriptors left");
    }

    /** Waits up to 10 s for {@code cond}; fails on its last answer (a count can move between two looks). */
    private static void await(BooleanSupplier cond, String what) throws InterruptedException {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        boolean ok;
        while (!(ok = cond.getAsBoolean()) && System.nanoTime() < end) {
            Thread.sleep(5);
        }
        assertTrue(ok, what);
    }

    private static void nothingLeft(Daemon d) throws InterruptedException {
        TcpProxy p = d.tcpProxy("p");
        await(() -> d.connections().count() == 0, "connections left on the books: " + d.connections().count());
        await(() -> p.stats().active.get() == 0, "active left: " + p.stats().active.get());
        for (Upstream u : p.state().balancer().upstreams()) {
            assertEquals(0, u.active(), "upstream " + u + " count (least-conn)");
        }
    }

    private static long fds() throws IOException {
        try (var s = Files.list(Path.of("/proc/self/fd"))) {
            return s.count();
        }
    }

    private static void leaveRaw(Daemon d) throws Exception {
        for (EventLoop loop : d.workers().loops()) {
            loop.submit(() -> {
                for (TcpConnection c : List.copyOf(d.connections().on(loop))) {
                    c.leaveRawPhase();
                }
            }).get(10, TimeUnit.SECONDS);
        }
    }

    /** The client's FIN passed on raw; then the connection moves; the upstream's answer and FIN still arrive. */
    @Test
    void clientHalfClosedBeforeTheMove() throws Exception {
        CountDownLatch sawEof = new CountDownLatch(1);
        CountDownLatch answer = new CountDownLatch(1);
        try (EchoServer up = new EchoServer(s -> {
            InputStream in = s.getInputStream();
            while (in.read() >= 0) {
                // until the client's FIN
            }
            sawEof.countDown();
            try {
                answer.await(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                return;
            }
            s.getOutputStream().write("bye".getBytes(StandardCharsets.US_ASCII));
            s.shutdownOutput();
            in.read();
        })) {
            int port = Net.freePort();
            Daemon d = start(port, one(up.port()), "");
            try (Socket c = connect(port)) {
                long moved = TcpConnection.rawMoved();
                c.getOutputStream().write("two\n".getBytes(StandardCharsets.US_ASCII));
                c.shutdownOutput();
                assertTrue(sawEof.await(10, TimeUnit.SECONDS), "FIN passed on raw");
                leaveRaw(d);
                assertEquals(1, TcpConnection.rawMoved() - moved);
                answer.countDown();
                assertEquals("bye", new String(c.getInputStream().readNBytes(3), StandardCharsets.US_ASCII));
                assertEquals(-1, c.getInputStream().read(), "the upstream's FIN");
            } finally {
                try {
                    nothingLeft(d);
                } finally {
                    d.stop();
                }
            }
        }
    }

    /** The upstream's FIN passed on raw; then the connection moves; the client's bytes and FIN still arrive. */
    @Test
    void upstreamHalfClosedBeforeTheMove() throws Exception {
        CompletableFuture<String> got = new CompletableFuture<>();
        try (EchoServer up = new EchoServer(s -> {
            s.getOutputStream().write("hi".getBytes(StandardCharsets.US_ASCII));
            s.shutdownOutput();
            got.complete(new String(s.getInputStream().readAllBytes(), StandardCharsets.US_ASCII));
        })) {
            int port = Net.freePort();
            Daemon d = start(port, one(up.port()), "");
            try (Socket c = connect(port)) {
                c.getOutputStream().write("a".getBytes(StandardCharsets.US_ASCII));
                assertEquals("hi", new String(c.getInputStream().readNBytes(2), StandardCharsets.US_ASCII));
                assertEquals(-1, c.getInputStream().read(), "FIN passed on raw");
                leaveRaw(d);
                c.getOutputStream().write("bc".getBytes(StandardCharsets.US_ASCII));
                Thread.sleep(50);
                c.getOutputStream().write("d".getBytes(StandardCharsets.US_ASCII));
                c.shutdownOutput();
                assertEquals("abcd", got.get(10, TimeUnit.SECONDS));
            } finally {
                try {
                    nothingLeft(d);
                } finally {
                    d.stop();
                }
            }
        }
    }

    /** Raw connections open at the end of a drain: closed, off the books, no descriptor left. */
    @Test
    void stopWithRawConnectionsOpen() throws Exception {
        try (EchoServer up = EchoServer.echo()) {
            long before = fds();
            int port = Net.freePort();
            Daemon d = start(port, one(up.port()), "");
            List<Socket> clients = new ArrayList<>();
            try {
                for (int i = 0; i < 5; i++) {
                    Socket c = connect(port);
                    clients.add(c);
                    c.getOutputStream().write('x');
                    assertEquals('x', c.getInputStream().read());
                }
                assertEquals(5, d.connections().count());
            } finally {
                d.stop();
            }
            assertEquals(0, d.connections().count());
            assertEquals(0, d.tcpProxy("p").stats().active.get());
            for (Socket c : clients) {
                int r;
                try {
                    r = c.getInputStream().read();
                } catch (SocketException e) {
                    r = -1;
                }
                assertEquals(-1, r);
                c.close();
            }
            awaitDescriptorsBackTo(before);
        }
    }

    /** A raw connection quiet for tcp.idle-timeout is closed, and counted as gone. */
    @Test
    void idleRawConnectionIsClosed() throws Exception {
        try (EchoServer up = EchoServer.echo()) {
            int port = Net.freePort();
            Daemon d = start(port, one(up.port()), ", tcp { idle-timeout = 1s }");
            try (Socket c = connect(port)) {
                long moved = TcpConnection.rawMoved();
                c.getOutputStream().write('x');
                assertEquals('x', c.getInputStream().read());
                int r;
                try {
                    r = c.getInputStream().read();
                } catch (SocketException e) {
                    r = -1;
                }
                assertEquals(-1, r);
                assertEquals(0, TcpConnection.rawMoved() - moved);
                nothingLeft(d);
            } finally {
                d.stop();
            }
        }
    }

    /**
     * The first upstream refuses: the next one serves, raw; no failure counted, every count back
     * to 0. (Before, a refusal looked like a connect still in progress: that upstream was then
     * tried again on a channel, and kept off the raw phase.)
     */
    @Test
    void failoverWhenTheFirstRefuses() throws Exception {
        try (EchoServer up = EchoServer.echo()) {
            int dead = Net.freePort();
            int port = Net.freePort();
            Daemon d = start(port, "[" + one(dead) + ", " + one(up.port()) + "]", ", balance = least-conn");
            try {
                long started = TcpConnection.rawStarted();
                for (int i = 0; i < 6; i++) {
                    try (Socket c = connect(port)) {
                        c.getOutputStream().write('x');
                        assertEquals('x', c.getInputStream().read());
                        c.shutdownOutput();
                        assertEquals(-1, c.getInputStream().read());
                    }
                }
                // On loopback the refusal is known inside connect(2): the next upstream is tried at once, raw.
                assertEquals(6, TcpConnection.rawStarted() - started, "every connection relayed raw");
                nothingLeft(d);
                assertTrue(d.proxyStatus().stream().anyMatch(l -> l.contains("active=0 opened=6 failed=0")),
                        d.proxyStatus().toString());
            } finally {
                d.stop();
            }
        }
    }

    /** Clients that reset at once (with or without bytes first): nothing left. */
    @Test
    void clientsThatResetAtOnce() throws Exception {
        try (EchoServer up = EchoServer.echo()) {
            int port = Net.freePort();
            Daemon d = start(port, one(up.port()), "");
            try {
                for (int i = 0; i < 40; i++) {
                    Socket c = connect(port);
                    if (i % 2 == 0) {
                        c.getOutputStream().write('x');
                    }
                    c.setSoLinger(true, 0);
                    c.close();
                }
                nothingLeft(d);
            } finally {
                d.stop();
            }
        }
    }

    /**
     * An upstream that resets as soon as it accepts, while the first bytes are written to it: the
     * client is reset or closed, never sent anything. On a busy machine the reset can reach the
     * client before its own connect() has returned (baton accepts, connects, is reset and resets
     * the client in the meantime): connect() then fails with it, which is the same answer.
     */
    @Test
    void upstreamThatResetsAtOnce() throws Exception {
        try (EchoServer up = new EchoServer(s -> {
            s.setSoLinger(true, 0);
        })) {
            int port = Net.freePort();
            Daemon d = start(port, one(up.port()), "");
            try {
                for (int i = 0; i < 20; i++) {
                    int r;
                    try (Socket c = connect(port)) {
                        c.getOutputStream().write("hello".getBytes(StandardCharsets.US_ASCII));
                        r = c.getInputStream().read();
                    } catch (SocketException e) {
                        r = -1; // reset, at connect, write or read
                    }
                    assertEquals(-1, r);
                }
                nothingLeft(d);
            } finally {
                d.stop();
            }
        }
    }

    /** The client half-closes raw, then resets: the upstream is reset and nothing is left. */
    @Test
    void clientResetsAfterItsFin() throws Exception {
        CompletableFuture<String> upEnd = new CompletableFuture<>();
        try (EchoServer up = new EchoServer(s -> {
            InputStream in = s.getInputStream();
            try {
                while (in.read() >= 0) {
                    // until the client's FIN
                }
                // wait for the reset
                s.setSoTimeout(5000);
                OutputStream out = s.getOutputStream();
                for (int i = 0; i < 200; i++) {
                    out.write('y');
                    Thread.sleep(10);
                }
                upEnd.complete("no reset");
            } catch (IOException e) {
                upEnd.complete("reset");
            } catch (InterruptedException e) {
                upEnd.complete("interrupted");
            }
        })) {
            int port = Net.freePort();
            Daemon d = start(port, one(up.port()), "");
            try {
                Socket c = connect(port);
                c.getOutputStream().write('x');
                c.shutdownOutput();
                assertEquals('y', c.getInputStream().read());
                c.setSoLinger(true, 0);
                c.close();
                assertEquals("reset", upEnd.get(10, TimeUnit.SECONDS));
                nothingLeft(d);
            } finally {
                d.stop();
            }
        }
    }

    /** The client's request and FIN pass raw; the answer is a stream (it moves onto channels and splices). */
    @Test
    void clientHalfClosedThenAStreamAnswer() throws Exception {
        byte[] data = new byte[4 << 20];
        new java.util.Random(3).nextBytes(data);
        try (EchoServer up = new EchoServer(s -> {
            InputStream in = s.getInputStream();
            while (in.read() >= 0) {
                // until the client's FIN
            }
            s.getOutputStream().write(data);
            s.shutdownOutput();
            in.read();
        })) {
            int port = Net.freePort();
            Daemon d = start(port, one(up.port()), "");
            try {
                for (int i = 0; i < 3; i++) {
                    long moved = TcpConnection.rawMoved();
                    try (Socket c = connect(port)) {
                        c.getOutputStream().write("GET\n".getBytes(StandardCharsets.US_ASCII));
                        c.shutdownOutput();
                        assertArrayEquals(data, c.getInputStream().readNBytes(data.length));
                        assertEquals(-1, c.getInputStream().read());
                    }
                    assertEquals(1, TcpConnection.rawMoved() - moved);
                }
                nothingLeft(d);
            } finally {
                d.stop();
            }
        }
    }

    /** The upstream's answer and FIN pass raw; then the client uploads a stream. */
    @Test
    void upstreamHalfClosedThenAStreamUpload() throws Exception {
        byte[] data = new byte[4 << 20];
        new java.util.Random(5).nextBytes(data);
        java.util.concurrent.BlockingQueue<byte[]> got = new java.util.concurrent.LinkedBlockingQueue<>();
        try (EchoServer up = new EchoServer(s -> {
            s.getOutputStream().write("hi".getBytes(StandardCharsets.US_ASCII));
            s.shutdownOutput();
            got.add(s.getInputStream().readAllBytes());
        })) {
            int port = Net.freePort();
            Daemon d = start(port, one(up.port()), "");
            try {
                for (int i = 0; i < 3; i++) {
                    try (Socket c = connect(port)) {
                        assertEquals("hi", new String(c.getInputStream().readNBytes(2), StandardCharsets.US_ASCII));
                        assertEquals(-1, c.getInputStream().read());
                        c.getOutputStream().write(data);
                        c.shutdownOutput();
                        byte[] b = got.poll(10, TimeUnit.SECONDS);
                        assertTrue(b != null, "upstream saw the end");
                        assertArrayEquals(data, b);
                    }
                }
                nothingLeft(d);
            } finally {
                d.stop();
            }
        }
    }

    /** A mix of endings, several clients at a time: every count back to 0, no descriptor left. */
    @Test
    void mixedEndingsLeaveNothing() throws Exception {
        try (EchoServer up = EchoServer.echo()) {
            long before = fds();
            int port = Net.freePort();
            Daemon d = start(port, one(up.port()), "");
            try {
                java.util.concurrent.ExecutorService ex = java.util.concurrent.Executors.newFixedThreadPool(4);
                List<java.util.concurrent.Future<?>> fs = new ArrayList<>();
                for (int i = 0; i < 200; i++) {
                    int k = i;
                    fs.add(ex.submit(() -> {
                        try (Socket c = connect(port)) {
                            switch (k % 5) {
                                case 0 -> { c.setSoLinger(true, 0); }
                                case 1 -> { c.getOutputStream().write('x'); c.setSoLinger(true, 0); }
                                case 2 -> { c.getOutputStream().write('x'); c.shutdownOutput();
                                    c.getInputStream().read(); c.setSoLinger(true, 0); }
                                case 3 -> { c.getOutputStream().write(new byte[100_000]); }
                                default -> { c.getOutputStream().write('x'); c.getInputStream().read(); c.shutdownOutput();
                                    c.getInputStream().read(); }
                            }
                        } catch (IOException e) {
                            // resets are expected
                        }
                        return null;
                    }));
                }
                for (var f : fs) {
                    f.get(20, TimeUnit.SECONDS);
                }
                ex.shutdown();
                nothingLeft(d);
            } finally {
                d.stop();
            }
            awaitDescriptorsBackTo(before);
        }
    }

    /**
     * tcp.nodelay = false: the upstream socket made in the raw phase keeps it when the connection
     * moves onto channels (Netty's channel config turns TCP_NODELAY on as it is made).
     */
    @Test
    void nodelayOffSurvivesTheMove() throws Exception {
        try (EchoServer up = EchoServer.echo()) {
            int port = Net.freePort();
            Daemon d = start(port, one(up.port()), ", tcp { nodelay = false }");
            try (Socket c = connect(port)) {
                c.getOutputStream().write('x');
                assertEquals('x', c.getInputStream().read());
                EventLoop loop = d.workers().loop(0);
                List<Boolean> seen = loop.submit(() -> {
                    List<Boolean> r = new ArrayList<>();
                    for (TcpConnection t : List.copyOf(d.connections().on(loop))) {
                        t.leaveRawPhase();
                        r.add(t.client().config().getOption(io.netty.channel.ChannelOption.TCP_NODELAY));
                        r.add(t.upstream().config().getOption(io.netty.channel.ChannelOption.TCP_NODELAY));
                    }
                    return r;
                }).get(10, TimeUnit.SECONDS);
                assertEquals(List.of(false, false), seen, "TCP_NODELAY of client and upstream legs");
                c.getOutputStream().write('y');
                assertEquals('y', c.getInputStream().read(), "still relaying");
            } finally {
                d.stop();
            }
        }
    }
}
