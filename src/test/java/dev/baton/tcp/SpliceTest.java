package dev.baton.tcp;

import dev.baton.daemon.Daemon;
import dev.baton.socket.Transport;
import dev.baton.testkit.Net;
import dev.baton.testkit.Proxies;
import io.netty.channel.epoll.BatonSplice;
import io.netty.channel.epoll.Epoll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Path;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Zero-copy relaying on epoll (BatonSplice): streams in both directions at once arrive whole and
 * really went through splice (once a direction has relayed its first 64 KiB; an exchange of small
 * messages stays buffered); a destination that cannot keep up makes the rest wait in buffers
 * without a byte lost or reordered; a FIN right behind a large upload ends the stream only after
 * its last byte; {@code tcp.splice = false} turns it off. BackpressureTest (every transport) adds
 * the hardest case on epoll: the upstream's FIN arrives while the client's socket is full and
 * bytes wait in the proxy, so the FIN must wait behind them.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class SpliceTest {
    private static final int MB = 1 << 20;

    @TempDir
    Path dir;

    @BeforeEach
    void epollOnly() {
        assumeTrue(Epoll.isAvailable(), "splice is an epoll feature");
    }

    /** Upstream: reads the client's upload to its FIN, answers its length and CRC32, then sends a stream of its own. */
    private static ServerSocket countingUpstream(int answerBytes, long answerSeed) throws IOException {
        ServerSocket server = new ServerSocket(0, 50, Net.LOOPBACK);
        Thread t = new Thread(() -> {
            while (!server.isClosed()) {
                try (Socket s = server.accept()) {
                    CompletableFuture<Void> sending = CompletableFuture.runAsync(() -> send(s, answerBytes, answerSeed));
                    InputStream in = s.getInputStream();
                    CRC32 crc = new CRC32();
                    long n = 0;
                    byte[] buf = new byte[64 * 1024];
                    int r;
                    while ((r = in.read(buf)) >= 0) {
                        crc.update(buf, 0, r);
                        n += r;
                    }
                    sending.join();
                    DataOutputStream out = new DataOutputStream(s.getOutputStream());
                    out.writeLong(n);
                    out.writeLong(crc.getValue());
                    out.flush();
                    s.shutdownOutput();
                    in.read();
                } catch (IOException e) {
                    // next connection
                }
            }
        }, "counting-upstream");
        t.setDaemon(true);
        t.start();
        return server;
    }

    private static void send(Socket s, int bytes, long seed) {
        try {
            OutputStream out = s.getOutputStream();
            Random r = new Random(seed);
            byte[] chunk = new byte[256 * 1024];
            for (int left = bytes; left > 0; left -= chunk.length) {
                r.nextBytes(chunk);
                out.write(chunk, 0, Math.min(left, chunk.length));
            }
            out.flush();
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static long crcOf(int bytes, long seed) {
        Random r = new Random(seed);
        byte[] chunk = new byte[256 * 1024];
        CRC32 crc = new CRC32();
        for (int left = bytes; left > 0; left -= chunk.length) {
            r.nextBytes(chunk);
            crc.update(chunk, 0, Math.min(left, chunk.length));
        }
        return crc.getValue();
    }

    /**
     * Uploads {@code up} bytes and FINs while the upstream streams {@code down} bytes back; reads
     * those (slowly if asked), then the upstream's count and CRC of the upload.
     */
    private static void exchange(int port, int up, int down, boolean slowReader) throws Exception {
        try (Socket s = new Socket()) {
            if (slowReader) {
                s.setReceiveBufferSize(32 * 1024);
            }
            s.connect(new InetSocketAddress(Net.LOOPBACK, port), 5000);
            s.setSoTimeout(60_000);
            CompletableFuture<Void> upload = CompletableFuture.runAsync(() -> {
                send(s, up, 11);
                try {
                    s.shutdownOutput(); // FIN right behind the last byte
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
            DataInputStream in = new DataInputStream(s.getInputStream());
            CRC32 crc = new CRC32();
            byte[] buf = new byte[64 * 1024];
            long got = 0;
            while (got < down) {
                int r = in.read(buf, 0, (int) Math.min(buf.length, down - got));
                assertTrue(r > 0, "stream ended after " + got + " of " + down + " bytes");
                crc.update(buf, 0, r);
                got += r;
                if (slowReader && (got & 0x3ffff) < r) {
                    Thread.sleep(2);
                }
            }
            assertEquals(crcOf(down, 22), crc.getValue(), "CRC32 of the download");
            upload.get(60, TimeUnit.SECONDS);
            assertEquals(up, in.readLong(), "bytes of the upload the upstream counted");
            assertEquals(crcOf(up, 11), in.readLong(), "CRC32 of the upload");
            assertEquals(-1, in.read(), "FIN after the answer");
        }
    }

    /** Runs {@code body} with the port of a proxy (epoll) in front of a counting upstream answering {@code answer} bytes. */
    private void throughProxy(int answer, int workers, String settings, PortBody body) throws Exception {
        try (ServerSocket upstream = countingUpstream(answer, 22)) {
            int port = Net.freePort();
            Daemon d = Proxies.start(dir, Transport.EPOLL, workers, "p { listen = \"127.0.0.1:" + port
                    + "\", upstreams = \"127.0.0.1:" + upstream.getLocalPort() + "\"" + settings + " }\n");
            try {
                body.run(port);
            } finally {
                d.stop();
            }
        }
    }

    private interface PortBody {
        void run(int port) throws Exception;
    }

    @Test
    void streamsBothWaysArriveWholeAndAreSpliced() throws Exception {
        throughProxy(64 * MB, 2, "", port -> {
            long before = BatonSplice.splicedBytes();
            for (int i = 0; i < 3; i++) {
                exchange(port, 64 * MB, 64 * MB, false);
            }
            long spliced = BatonSplice.splicedBytes() - before;
            // 384 MB relayed; a few partial writes are copied instead, most must be spliced.
            assertTrue(spliced > 192L * MB, "spliced " + spliced + " bytes of 384 MB");
        });
    }

    @Test
    void aSlowReaderGetsEverythingInOrderThroughTheCopiedRest() throws Exception {
        throughProxy(32 * MB, 1, "", port -> {
            long copied = BatonSplice.copiedBytes();
            exchange(port, 8 * MB, 32 * MB, true);
            assertTrue(BatonSplice.copiedBytes() > copied, "a full destination made some bytes wait in buffers");
        });
    }

    @Test
    void anExchangeOfSmallMessagesStaysBuffered() throws Exception {
        throughProxy(4096, 1, "", port -> {
            long before = BatonSplice.splicedBytes() + BatonSplice.copiedBytes();
            for (int i = 0; i < 5; i++) {
                exchange(port, 4096, 4096, false);
            }
            assertEquals(before, BatonSplice.splicedBytes() + BatonSplice.copiedBytes(),
                    "nothing spliced below " + TcpConnection.SPLICE_AFTER + " bytes per direction");
        });
    }

    @Test
    void spliceOffKeepsBufferedRelaying() throws Exception {
        throughProxy(16 * MB, 1, ", tcp { splice = false }", port -> {
            long before = BatonSplice.splicedBytes() + BatonSplice.copiedBytes();
            exchange(port, 16 * MB, 16 * MB, false);
            assertEquals(before, BatonSplice.splicedBytes() + BatonSplice.copiedBytes(), "nothing spliced");
        });
    }
}
