package dev.baton.tcp;

import dev.baton.daemon.Daemon;
import dev.baton.socket.Transport;
import dev.baton.testkit.EchoServer;
import dev.baton.testkit.Net;
import dev.baton.testkit.Proxies;
import io.netty.channel.epoll.BatonSplice;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Path;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.zip.CRC32;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A client that does not read stops the proxy reading from the upstream: memory stays bounded. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class BackpressureTest {
    private static final long TOTAL = 1L << 30; // 1 GB
    private static final long BOUND = 64L << 20; // 64 MB

    @TempDir
    Path dir;

    static java.util.stream.Stream<Transport> transports() {
        return Net.transports();
    }

    @ParameterizedTest
    @MethodSource("transports")
    void nonReadingClientBlocksTheUpstreamThenGetsEverything(Transport t) throws Exception {
        byte[] chunk = new byte[65536];
        new Random(7).nextBytes(chunk);
        AtomicLong written = new AtomicLong();
        CompletableFuture<Long> sentCrc = new CompletableFuture<>();
        try (EchoServer up = new EchoServer(s -> {
            OutputStream out = s.getOutputStream();
            CRC32 crc = new CRC32();
            for (long n = 0; n < TOTAL; n += chunk.length) {
                out.write(chunk);
                crc.update(chunk);
                written.addAndGet(chunk.length);
            }
            s.shutdownOutput();
            sentCrc.complete(crc.getValue());
            s.getInputStream().read(); // wait for the client to close
        })) {
            int port = Net.freePort();
            Daemon d = Proxies.start(dir, t, 1, "p { listen = \"127.0.0.1:" + port + "\", upstreams = \"127.0.0.1:"
                    + up.port() + "\" }\n");
            long splicedBefore = BatonSplice.splicedBytes();
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress(Net.LOOPBACK, port), 5000);
                s.setSoTimeout(60_000);
                // Wait until the upstream's writes stall (counter unchanged for 500ms), at most 20s.
                long last = -1;
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
                while (System.nanoTime() < deadline) {
                    long now = written.get();
                    if (now == last && now > 0) {
                        break;
                    }
                    last = now;
                    Thread.sleep(500);
                }
                long stalled = written.get();
                assertTrue(stalled > 0, "upstream started writing");
                assertTrue(stalled < BOUND, "upstream blocked after " + stalled + " bytes (bound " + BOUND + ")");
                Thread.sleep(300);
                assertTrue(written.get() < BOUND, "still blocked: " + written.get());

                CRC32 crc = new CRC32();
                long got = 0;
                InputStream in = s.getInputStream();
                byte[] buf = new byte[1 << 17];
                int n;
                while ((n = in.read(buf)) >= 0) {
                    crc.update(buf, 0, n);
                    got += n;
                }
                assertEquals(TOTAL, got, "every byte arrived");
                if (t == Transport.EPOLL) {
                    assertTrue(BatonSplice.splicedBytes() - splicedBefore > TOTAL / 2, "relayed by splice");
                }
                assertEquals(sentCrc.get(10, TimeUnit.SECONDS), crc.getValue(), "CRC32 of the 1 GB stream");
            } finally {
                d.stop();
            }
        }
    }
}
