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
 * The raw phase on epoll: a short exchange is relayed on raw sockets from accept to close and
 * leaves nothing behind; a stream moves onto channels (and splices) with nothing lost; a
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
        return Proxies.start(dir, Transport.EPOLL, 2, "p { listen = \"127.0.0.1:" + port + "\", upstreams = \"127.0.0.1:"
                + upstreamPort + "\" }\n");
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

    /** Both ways at once, 2 MiB each, so both directions pass SPLICE_AFTER while the other is busy. */
    @Test
    void aStreamMovesOntoChannelsAndSplicesWithNothingLost() throws Exception {
        try (EchoServer up = EchoServer.echo()) {
            int port = Net.freePort();
            Daemon d = start(port, up.port());
            try {
                long moved = TcpConnection.rawMoved();
                long spliced = BatonSplice.splicedBytes();
                byte[] data = new byte[2 << 20];
                new Random(7).nextBytes(data);
                try (Socket s = connect(port)) {
                    CompletableFuture<Void> sending = CompletableFuture.runAsync(() -> {
                        try {
                            OutputStream out = s.getOutputStream();
                            for (int off = 0; off < data.length; off += 1000) { // small writes, many reads
                                out.write(data, off, Math.min(1000, data.length - off));
                            }
                            s.shutdownOutput();
                        } catch (IOException e) {
                            throw new java.io.UncheckedIOException(e);
                        }
                    });
                    assertArrayEquals(data, readN(s.getInputStream(), data.length), "echoed whole and in order");
                    assertEquals(-1, s.getInputStream().read());
                    sending.join();
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
     * What an upgrade does first: every raw connection moves onto channels, on its worker, in the
     * middle of whatever it was doing. Here one has a half-close behind it (the client's FIN passed
     * on, the answer still coming), another is plain open; both go on as before.
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
}
