package dev.baton.tcp;

import dev.baton.daemon.Daemon;
import dev.baton.socket.Transport;
import dev.baton.testkit.EchoServer;
import dev.baton.testkit.Net;
import dev.baton.testkit.Proxies;
import io.netty.channel.EventLoop;
import io.netty.channel.epoll.BatonSplice;
import io.netty.channel.epoll.Epoll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The raw phase on epoll: a short exchange, or a long one of small messages, is relayed on raw
 * sockets from accept to close and leaves nothing behind; a stream moves onto channels (and
 * splices) with nothing lost; a
 * connection moved onto channels in the middle of an exchange (as an upgrade moves it) carries on;
 * and {@code -Dbaton.tcp.raw=false} is not needed for any of it to be right (the other transports'
 * tests and the channel path cover that).
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class RawPhaseTest {
    @TempDir
    Path dir;

    @BeforeEach
    void epollOnly() {
        assumeTrue(Epoll.isAvailable(), "the raw phase is an epoll feature");
        assumeTrue(TcpProxy.RAW, "turned off with -Dbaton.tcp.raw=false");
    }

    private Daemon start(int port, int upstreamPort) throws Exception {
        return start(2, port, upstreamPort, "");
    }

    private Daemon start(int workers, int port, int upstreamPort, String more) throws Exception {
        return Proxies.start(dir, Transport.EPOLL, workers, "p { listen = \"127.0.0.1:" + port
                + "\", upstreams = \"127.0.0.1:" + upstreamPort + "\"" + more + " }\n");
    }

    private static Socket connect(int port) throws IOException {
        Socket s = new Socket();
        s.connect(new InetSocketAddress(Net.LOOPBACK, port), 5000);
        s.setSoTimeout(10_000);
        return s;
    }

    private static byte[] readN(InputStream in, int n) throws IOException {
        return new DataInputStream(in).readNBytes(n);
    }

    private static void awaitNoConnections(Daemon d) throws InterruptedException {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (d.connections().count() > 0 && System.nanoTime() < end) {
            Thread.sleep(5);
        }
        assertEquals(0, d.connections().count(), "connections left on the books");
    }

    @Test
    void aShortExchangeStaysOnRawSocketsAndLeavesNothing() throws Exception {
        try (EchoServer up = EchoServer.echo()) {
            int port = Net.freePort();
            Daemon d = start(port, up.port());
            try {
                long started = TcpConnection.rawStarted();
                long moved = TcpConnection.rawMoved();
                for (int i = 0; i < 50; i++) {
                    try (Socket s = connect(port)) {
                        byte[] msg = ("hello " + i + "\n").getBytes(StandardCharsets.US_ASCII);
                        s.getOutputStream().write(msg);
                        assertArrayEquals(msg, readN(s.getInputStream(), msg.length));
                        s.shutdownOutput(); // the echo server answers with its FIN
                        assertEquals(-1, s.getInputStream().read(), "FIN passed on");
                    }
                }
                assertEquals(50, TcpConnection.rawStarted() - started, "every connection began raw");
                assertEquals(0, TcpConnection.rawMoved() - moved, "none needed channels");
                awaitNoConnections(d);
                assertTrue(d.proxyStatus().stream().anyMatch(l -> l.contains("active=0 opened=50 failed=0")),
                        d.proxyStatus().toString());
            } finally {
                d.stop();
            }
        }
    }

    /**
     * A connection relayed on raw sockets has no channel (none is made for it), and its socket has
     * the configured TCP_NODELAY and keepalive: set on the first connection's own socket, inherited
     * from the listening socket by the ones after it; a reload that changes them reaches the
     * connections accepted after it. Read while the connection is still raw (a channel, once made,
     * would set TCP_NODELAY itself).
     */
    @Test
    void rawClientSocketsHaveTheConfiguredOptionsWithoutAChannel() throws Exception {
        try (EchoServer up = EchoServer.echo()) {
            int port = Net.freePort();
            String p = "p { listen = \"127.0.0.1:" + port + "\", upstreams = \"127.0.0.1:" + up.port() + "\", tcp { ";
            Daemon d = Proxies.start(dir, Transport.EPOLL, 1,
                    p + "nodelay = true, keepalive { enabled = true, idle = 17s, interval = 3s, count = 4 } } }");
            try {
                assertRawClientOptions(d, port, List.of(true, true, 17, 3, 4));
                Proxies.reload(d, dir, Transport.EPOLL, 1,
                        p + "nodelay = false, keepalive { enabled = true, idle = 23s, interval = 5s, count = 2 } } }");
                assertRawClientOptions(d, port, List.of(false, true, 23, 5, 2));
                Proxies.reload(d, dir, Transport.EPOLL, 1, p + "nodelay = true, keepalive.enabled = false } }");
                assertRawClientOptions(d, port, List.of(true, false));
            } finally {
                d.stop();
            }
        }
    }

    /** Three connections one after the other: each one is raw, has no channel, and has these options. */
    private static void assertRawClientOptions(Daemon d, int port, List<Object> expected) throws Exception {
        EventLoop loop = d.workers().loop(0);
        for (int i = 0; i < 3; i++) {
            try (Socket s = connect(port)) {
                s.getOutputStream().write('x');
                assertEquals('x', s.getInputStream().read(), "relay is up");
                List<Object> seen = loop.submit(() -> {
                    TcpConnection c = d.connections().on(loop).iterator().next();
                    int fd = c.rawClientFd();
                    assertTrue(fd >= 0, "still on raw sockets");
                    assertEquals(null, c.client(), "no channel made for it");
                    io.netty.channel.unix.Socket view = new io.netty.channel.unix.Socket(fd); // does not own fd
                    List<Object> r = new java.util.ArrayList<>(List.of(view.isTcpNoDelay(), view.isKeepAlive()));
                    if (view.isKeepAlive()) {
                        for (int opt : new int[] {4, 5, 6}) { // TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT
                            r.add(view.getIntOpt(6, opt));
                        }
                    }
                    return r;
                }).get(10, TimeUnit.SECONDS);
                assertEquals(expected, seen, "connection " + (i + 1));
            }
            awaitNoConnections(d);
        }
    }

    /**
     * A stream: 2 MiB both ways at once. The worker is held while the client's first 256 KiB
     * arrive, so its first relay read fills the buffer and the connection moves onto channels,
     * which splice from there; nothing is lost or reordered on the way.
     */
    @Test
    void aStreamMovesOntoChannelsAndSplicesWithNothingLost() throws Exception {
        try (EchoServer up = EchoServer.echo()) {
            int port = Net.freePort();
            Daemon d = start(1, port, up.port(), "");
            try {
                long moved = TcpConnection.rawMoved();
                long spliced = BatonSplice.splicedBytes();
                byte[] data = new byte[2 << 20];
                new Random(7).nextBytes(data);
                try (Socket s = connect(port)) {
                    java.util.concurrent.CountDownLatch first = new java.util.concurrent.CountDownLatch(1);
                    java.util.concurrent.Future<?> held = d.workers().loop(0).submit(
                            () -> first.await(10, TimeUnit.SECONDS));
                    CompletableFuture<Void> sending = CompletableFuture.runAsync(() -> {
                        try {
                            OutputStream out = s.getOutputStream();
                            int chunk = 16 * 1024;
                            for (int off = 0; off < data.length; off += chunk) {
                                out.write(data, off, Math.min(chunk, data.length - off));
                                if (off + chunk == 256 * 1024) {
                                    Thread.sleep(20); // in baton's socket by now (loopback)
                                    first.countDown();
                                }
                            }
                            s.shutdownOutput();
                        } catch (IOException | InterruptedException e) {
                            throw new RuntimeException(e);
                        }
                    });
                    assertArrayEquals(data, readN(s.getInputStream(), data.length), "echoed whole and in order");
                    assertEquals(-1, s.getInputStream().read());
                    sending.join();
                    held.get(10, TimeUnit.SECONDS);
                }
                assertEquals(1, TcpConnection.rawMoved() - moved, "moved onto channels once");
                assertTrue(BatonSplice.splicedBytes() - spliced > 0, "and spliced from there");
                awaitNoConnections(d);
            } finally {
                d.stop();
            }
        }
    }

    /**
     * Without splice a stream stays raw until a side cannot take a write whole: a client that
     * does not read for a while, under 32 MiB from its upstream. The rest of that read moves with
     * the connection onto channels, which queue it and pace the upstream; every byte arrives, in
     * order.
     */
    @Test
    void aPeerThatCannotTakeAWriteWholeMovesItOntoChannelsWithNothingLost() throws Exception {
        int size = 32 << 20;
        byte[] data = new byte[size];
        new Random(11).nextBytes(data);
        try (EchoServer up = new EchoServer(s -> {
            s.getOutputStream().write(data);
            s.shutdownOutput();
            s.getInputStream().read();
        })) {
            int port = Net.freePort();
            Daemon d = start(1, port, up.port(), ", tcp.splice = false");
            try {
                long moved = TcpConnection.rawMoved();
                try (Socket s = connect(port)) {
                    s.getOutputStream().write('x');
                    Thread.sleep(1000); // not reading: the socket buffers on the way fill up
                    assertEquals(1, TcpConnection.rawMoved() - moved, "moved onto channels at the first short write");
                    assertArrayEquals(data, readN(s.getInputStream(), size), "every byte, in order");
                    assertEquals(-1, s.getInputStream().read());
                }
                awaitNoConnections(d);
            } finally {
                d.stop();
            }
        }
    }

    /**
     * The upstream's FIN and the client's reset reach baton in the same wake-up, the FIN first:
     * passing the FIN on (shutdown) fails with ENOTCONN, which Netty throws unchecked. That must
     * end the connection like any reset, not escape into the worker's loop, which would log it
     * and sleep for a second with every connection on that worker (it did: the next connection
     * waited over a second).
     */
    @Test
    void aResetMeetingAFinToPassOnDoesNotStallTheWorker() throws Exception {
        java.util.concurrent.CountDownLatch finNow = new java.util.concurrent.CountDownLatch(1);
        try (EchoServer up = new EchoServer(s -> {
            InputStream in = s.getInputStream();
            int c = in.read();
            if (c == 'f') { // the connection under test: FIN when told
                try {
                    finNow.await(10, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    return;
                }
                s.shutdownOutput();
                in.read();
                return;
            }
            OutputStream out = s.getOutputStream();
            for (; c >= 0; c = in.read()) {
                out.write(c);
            }
        })) {
            int port = Net.freePort();
            Daemon d = start(1, port, up.port(), "");
            try {
                Socket victim = connect(port);
                victim.getOutputStream().write('f');
                long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                while (up.accepted().isEmpty() && System.nanoTime() < end) {
                    Thread.sleep(5);
                }
                Thread.sleep(50); // relayed, raw
                java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
                java.util.concurrent.Future<?> held = d.workers().loop(0).submit(() -> release.await(10, TimeUnit.SECONDS));
                finNow.countDown();
                Thread.sleep(50); // the upstream's FIN is in baton's socket
                victim.setSoLinger(true, 0);
                victim.close(); // and now the client's reset
                Thread.sleep(50);
                release.countDown();
                held.get(10, TimeUnit.SECONDS);
                long t0 = System.nanoTime();
                try (Socket s = connect(port)) {
                    s.getOutputStream().write('x');
                    assertEquals('x', s.getInputStream().read());
                }
                long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
                assertTrue(ms < 500, "the next connection waited " + ms + " ms");
                awaitNoConnections(d);
            } finally {
                d.stop();
            }
        }
    }

    /** Many small messages over one connection (keep-alive HTTP, say): it stays raw for its whole life. */
    @Test
    void manySmallMessagesStayRaw() throws Exception {
        try (EchoServer up = EchoServer.echo()) {
            int port = Net.freePort();
            Daemon d = start(port, up.port());
            try {
                long started = TcpConnection.rawStarted();
                long moved = TcpConnection.rawMoved();
                try (Socket s = connect(port)) {
                    byte[] msg = new byte[1000];
                    for (int i = 0; i < 500; i++) { // 500 kB each way, in 1 kB exchanges
                        msg[0] = (byte) i;
                        s.getOutputStream().write(msg);
                        assertArrayEquals(msg, readN(s.getInputStream(), msg.length));
                    }
                }
                assertEquals(1, TcpConnection.rawStarted() - started);
                assertEquals(0, TcpConnection.rawMoved() - moved, "small messages need no channels");
                awaitNoConnections(d);
            } finally {
                d.stop();
            }
        }
    }

    /**
     * What an upgrade does first: every raw connection moves onto channels, on its worker, in the
     * middle of whatever it was doing. Here two open ones, each after an exchange; afterwards one
     * half-closes and gets the rest of its answer, the other exchanges more first. (RawPhaseEdgeTest
     * moves connections with a half-close already behind them.)
     */
    @Test
    void aConnectionMovedOntoChannelsMidwayCarriesOn() throws Exception {
        // Answers each line, and at the client's FIN sends "bye" and its own FIN.
        try (EchoServer up = new EchoServer(s -> {
            InputStream in = s.getInputStream();
            OutputStream out = s.getOutputStream();
            int c;
            while ((c = in.read()) >= 0) {
                out.write(c);
            }
            out.write("bye".getBytes(StandardCharsets.US_ASCII));
            s.shutdownOutput();
        })) {
            int port = Net.freePort();
            Daemon d = start(port, up.port());
            try (Socket open = connect(port); Socket halfClosed = connect(port)) {
                long moved = TcpConnection.rawMoved();
                open.getOutputStream().write("one\n".getBytes(StandardCharsets.US_ASCII));
                assertEquals("one\n", new String(readN(open.getInputStream(), 4), StandardCharsets.US_ASCII));
                halfClosed.getOutputStream().write("two\n".getBytes(StandardCharsets.US_ASCII));
                assertEquals("two\n", new String(readN(halfClosed.getInputStream(), 4), StandardCharsets.US_ASCII));
                long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                while (d.connections().count() < 2 && System.nanoTime() < end) {
                    Thread.sleep(5);
                }
                int before = d.connections().count();
                assertEquals(2, before);
                for (EventLoop loop : d.workers().loops()) {
                    loop.submit(() -> {
                        for (TcpConnection c : List.copyOf(d.connections().on(loop))) {
                            c.leaveRawPhase();
                        }
                    }).get(10, TimeUnit.SECONDS);
                }
                assertEquals(2, TcpConnection.rawMoved() - moved);
                halfClosed.shutdownOutput();
                assertEquals("bye", new String(readN(halfClosed.getInputStream(), 3), StandardCharsets.US_ASCII));
                assertEquals(-1, halfClosed.getInputStream().read(), "the upstream's FIN, after its bytes");
                open.getOutputStream().write("three\n".getBytes(StandardCharsets.US_ASCII));
                assertEquals("three\n", new String(readN(open.getInputStream(), 6), StandardCharsets.US_ASCII));
                open.shutdownOutput();
                assertEquals("bye", new String(readN(open.getInputStream(), 3), StandardCharsets.US_ASCII));
                assertEquals(-1, open.getInputStream().read());
            } finally {
                try {
                    awaitNoConnections(d);
                } finally {
                    d.stop();
                }
            }
        }
    }

    /**
     * The upstream socket gets its keepalive settings about a second into the connection, while
     * it stays raw (not at open: four system calls a short connection does not need).
     */
    @Test
    void theUpstreamGetsKeepaliveAboutASecondIn() throws Exception {
        try (EchoServer up = EchoServer.echo()) {
            int port = Net.freePort();
            Daemon d = start(1, port, up.port(), ", tcp.keepalive { enabled = true, idle = 17s, interval = 3s, count = 4 }");
            try (Socket s = connect(port)) {
                long moved = TcpConnection.rawMoved();
                long t0 = System.nanoTime();
                s.getOutputStream().write('x');
                assertEquals('x', s.getInputStream().read());
                EventLoop loop = d.workers().loop(0);
                List<Integer> first = upstreamKeepalive(d, loop);
                if (System.nanoTime() - t0 < TimeUnit.MILLISECONDS.toNanos(500)) {
                    assertEquals(List.of(0), first, "no keepalive in the connection's first moments");
                }
                // "About a second" on the worker's own clock, not the wall's (a loaded machine can
                // hold the worker up for seconds): a task the worker runs a second after the first
                // exchange runs after the keepalive timer, which was set when the connection opened.
                List<Integer> later = loop.schedule(() -> keepaliveNow(d, loop), 1, TimeUnit.SECONDS)
                        .get(10, TimeUnit.SECONDS);
                assertEquals(List.of(1, 17, 3, 4), later,
                        "keepalive on within a second of the worker's time, with the configured settings");
                assertEquals(0, TcpConnection.rawMoved() - moved, "still raw");
                s.getOutputStream().write('y');
                assertEquals('y', s.getInputStream().read(), "and still relaying");
            } finally {
                d.stop();
            }
        }
    }

    /** SO_KEEPALIVE and, if on, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT of the one connection's raw upstream socket. */
    private static List<Integer> upstreamKeepalive(Daemon d, EventLoop loop) throws Exception {
        return loop.submit(() -> keepaliveNow(d, loop)).get(10, TimeUnit.SECONDS);
    }

    /** As {@link #upstreamKeepalive}, on {@code loop}. */
    private static List<Integer> keepaliveNow(Daemon d, EventLoop loop) throws java.io.IOException {
        List<TcpConnection> cs = List.copyOf(d.connections().on(loop));
        assertEquals(1, cs.size());
        int fd = cs.get(0).rawUpstreamFd();
        assertTrue(fd >= 0, "on raw sockets");
        io.netty.channel.unix.Socket view = new io.netty.channel.unix.Socket(fd);
        if (!view.isKeepAlive()) {
            return List.of(0);
        }
        return List.of(1, view.getIntOpt(6, 4), view.getIntOpt(6, 5), view.getIntOpt(6, 6));
    }
}
