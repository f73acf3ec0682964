package dev.baton.tcp;

import dev.baton.daemon.Daemon;
import dev.baton.socket.Transport;
import dev.baton.testkit.Net;
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
import java.nio.file.Path;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import java.util.zip.CRC32;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A client sends its request and half-closes, then reads a large answer slower than the upstream
 * sends it (an HTTP/1.0-style exchange over a slow link). Every byte must arrive: on epoll the
 * client's socket wants no event once its input ended, and Netty 4.2.18 then loses the socket
 * from the epoll set and fails the next write that has to wait (see BatonEpollStreams).
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class HalfCloseTest {
    private static final int ANSWER = 8 << 20;

    @TempDir
    Path dir;

    static Stream<Transport> transports() {
        return Net.transports();
    }

    private static long crc(long seed) {
        Random r = new Random(seed);
        byte[] b = new byte[ANSWER];
        r.nextBytes(b);
        CRC32 c = new CRC32();
        c.update(b);
        return c.getValue();
    }

    @ParameterizedTest
    @MethodSource("transports")
    void a_half_closed_client_reading_slowly_gets_the_whole_answer(Transport t) throws Exception {
        try (ServerSocket upstream = new ServerSocket(0, 50, Net.LOOPBACK)) {
            Thread server = new Thread(() -> {
                while (!upstream.isClosed()) {
                    try (Socket s = upstream.accept()) {
                        InputStream in = s.getInputStream();
                        long seed = 0;
                        int c;
                        while ((c = in.read()) >= 0) {
                            seed = seed * 31 + c;
                        }
                        byte[] answer = new byte[ANSWER];
                        new Random(seed).nextBytes(answer);
                        OutputStream out = s.getOutputStream();
                        out.write(answer);
                        s.shutdownOutput();
                        in.read(); // until the proxy closes
                    } catch (IOException e) {
                        // next connection
                    }
                }
            }, "answering-upstream");
            server.setDaemon(true);
            server.start();
            int port = Net.freePort();
            Daemon d = Proxies.start(dir, t, 1, "p { listen = \"127.0.0.1:" + port + "\", upstreams = \"127.0.0.1:"
                    + upstream.getLocalPort() + "\" }\n");
            try {
                for (int i = 0; i < 3; i++) {
                    try (Socket s = new Socket()) {
                        s.setReceiveBufferSize(16 * 1024);
                        s.connect(new InetSocketAddress(Net.LOOPBACK, port), 5000);
                        s.setSoTimeout(30_000);
                        String request = "GET /" + i;
                        long seed = 0;
                        for (char c : request.toCharArray()) {
                            seed = seed * 31 + c;
                        }
                        s.getOutputStream().write(request.getBytes(java.nio.charset.StandardCharsets.US_ASCII));
                        s.shutdownOutput();
                        CRC32 got = new CRC32();
                        long total = 0;
                        byte[] buf = new byte[16 * 1024];
                        int n;
                        InputStream in = s.getInputStream();
                        while ((n = in.read(buf)) >= 0) {
                            got.update(buf, 0, n);
                            total += n;
                            if ((total & 0x3ffff) < n) {
                                Thread.sleep(5); // slower than the upstream: the proxy's writes wait
                            }
                        }
                        assertEquals(ANSWER, total, "bytes of the answer");
                        assertEquals(crc(seed), got.getValue(), "crc of the answer");
                    }
                }
            } finally {
                d.stop();
            }
        }
    }
}
