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

import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * tcp.idle-timeout: traffic keeps a connection open well past the timeout; once both sides are
 * quiet, the proxy closes it.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class IdleTimeoutTest {
    @TempDir
    Path dir;

    static Stream<Transport> transports() {
        return Net.transports();
    }

    @ParameterizedTest
    @MethodSource("transports")
    void traffic_keeps_a_connection_and_silence_closes_it(Transport t) throws Exception {
        long idle = TimeUnit.SECONDS.toNanos(1);
        try (EchoServer up = EchoServer.echo()) {
            int port = Net.freePort();
            Daemon d = Proxies.start(dir, t, 1, "p { listen = \"127.0.0.1:" + port + "\", upstreams = \"127.0.0.1:"
                    + up.port() + "\", tcp { idle-timeout = 1s } }\n");
            try {
                // A loaded machine can hold this thread up past the timeout between two messages
                // (seen in CI): the proxy is then right to close, so that connection proves nothing
                // and the exchange starts over on a new one. A close while this side wrote within
                // the timeout of its previous write is always a failure.
                for (int attempt = 1; ; attempt++) {
                    try (Socket s = new Socket()) {
                        s.connect(new InetSocketAddress(Net.LOOPBACK, port), 5000);
                        s.setSoTimeout(20_000);
                        OutputStream out = s.getOutputStream();
                        InputStream in = s.getInputStream();
                        long lastWrite = System.nanoTime(); // the proxy's clock starts after this
                        boolean heldUp = false;
                        // Four idle timeouts' worth of traffic, a message every 250 ms: each one echoed.
                        for (int i = 0; i < 16 && !heldUp; i++) {
                            long now = System.nanoTime();
                            heldUp = now - lastWrite >= idle;
                            if (!heldUp) {
                                lastWrite = now;
                                byte[] msg = ("ping " + i).getBytes(StandardCharsets.US_ASCII);
                                out.write(msg);
                                assertArrayEquals(msg, in.readNBytes(msg.length), "echo " + i);
                                Thread.sleep(250);
                            }
                        }
                        if (heldUp) {
                            assertTrue(attempt < 3, "this thread was held up past the idle timeout on every attempt");
                            continue;
                        }
                        int r;
                        try {
                            r = in.read(); // nothing more is sent: the proxy closes the quiet connection
                        } catch (SocketException e) {
                            r = -1;
                        }
                        assertEquals(-1, r, "closed when idle");
                        return;
                    }
                }
            } finally {
                d.stop();
            }
        }
    }
    /**
     * A client that stops reading while its upstream still has bytes for it: once the connection
     * has been idle for the timeout, both sockets close even though bytes are queued for the client
     * (a close after flushing them would wait for that reader for ever), and nothing is left behind.
     */
    @ParameterizedTest
    @MethodSource("transports")
    void a_reader_that_stopped_reading_is_closed_at_the_timeout(Transport t) throws Exception {
        byte[] chunk = new byte[64 * 1024];
        try (EchoServer up = new EchoServer(s -> {
            java.io.OutputStream out = s.getOutputStream();
            while (true) {
                out.write(chunk); // until the proxy closes the connection
            }
        })) {
            int port = Net.freePort();
            Daemon d = Proxies.start(dir, t, 1, "p { listen = \"127.0.0.1:" + port + "\", upstreams = \"127.0.0.1:"
                    + up.port() + "\", tcp { idle-timeout = 1s } }\n");
            try (Socket s = new Socket()) {
                s.setReceiveBufferSize(64 * 1024);
                s.connect(new InetSocketAddress(Net.LOOPBACK, port), 5000);
                NothingLeft nothingLeft = new NothingLeft();
                TcpProxy p = d.tcpProxy("p");
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                while (p.stats().active.get() == 0 && System.nanoTime() < deadline) {
                    Thread.sleep(10);
                }
                assertEquals(1, p.stats().active.get(), "connected");
                // This client never reads. The proxy fills its buffers, stops reading the upstream,
                // and after a second without progress must let go.
                nothingLeft.check(p);
            } finally {
                d.stop();
            }
        }
    }
}
