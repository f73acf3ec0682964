package dev.baton.udp;

import dev.baton.daemon.Daemon;
import dev.baton.socket.Transport;
import dev.baton.testkit.Net;
import dev.baton.testkit.Proxies;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetSocketAddress;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** UDP relay over loopback, for every transport this machine has. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class UdpProxyTest {
    @TempDir
    Path dir;

    static java.util.stream.Stream<Transport> transports() {
        return Net.transports();
    }

    /** UDP echo upstream that records the source port of every datagram. */
    static final class UdpEcho implements AutoCloseable {
        final DatagramSocket socket;
        final BlockingQueue<Integer> sources = new LinkedBlockingQueue<>();
        final Thread thread;

        UdpEcho() throws IOException {
            this(new InetSocketAddress(Net.LOOPBACK, 0));
        }

        UdpEcho(InetSocketAddress bind) throws IOException {
            socket = new DatagramSocket(bind);
            socket.setReceiveBufferSize(4 << 20); // bursts of a few thousand datagrams
            thread = new Thread(() -> {
                byte[] buf = new byte[65536];
                while (!socket.isClosed()) {
                    try {
                        DatagramPacket p = new DatagramPacket(buf, buf.length);
                        socket.receive(p);
                        sources.add(p.getPort());
                        socket.send(new DatagramPacket(p.getData(), p.getOffset(), p.getLength(), p.getSocketAddress()));
                    } catch (IOException e) {
                        return;
                    }
                }
            }, "udp-echo");
            thread.setDaemon(true);
            thread.start();
        }

        int port() {
            return socket.getLocalPort();
        }

        @Override
        public void close() {
            socket.close();
        }
    }

    private static int freeUdpPort() throws IOException {
        try (DatagramSocket s = new DatagramSocket(new InetSocketAddress(Net.LOOPBACK, 0))) {
            return s.getLocalPort();
        }
    }

    private static String proxy(int listen, int upstream, String udp) {
        return "u { protocol = udp, listen = \"127.0.0.1:" + listen + "\", upstreams = \"127.0.0.1:" + upstream
                + "\", udp { " + udp + " } }\n";
    }

    private static String roundTrip(DatagramSocket s, int port, String msg) throws IOException {
        byte[] b = msg.getBytes(StandardCharsets.UTF_8);
        s.send(new DatagramPacket(b, b.length, new InetSocketAddress(Net.LOOPBACK, port)));
        byte[] buf = new byte[2048];
        DatagramPacket p = new DatagramPacket(buf, buf.length);
        s.receive(p);
        return new String(p.getData(), 0, p.getLength(), StandardCharsets.UTF_8);
    }

    @ParameterizedTest
    @MethodSource("transports")
    void eachOf200ClientsGetsItsOwnReplies(Transport t) throws Exception {
        try (UdpEcho up = new UdpEcho()) {
            int port = freeUdpPort();
            Daemon d = Proxies.start(dir, t, 2, proxy(port, up.port(), "max-flows = 1000"));
            List<DatagramSocket> clients = new ArrayList<>();
            try {
                for (int i = 0; i < 200; i++) {
                    DatagramSocket s = new DatagramSocket(new InetSocketAddress(Net.LOOPBACK, 0));
                    s.setSoTimeout(5000);
                    clients.add(s);
                }
                // Everyone sends first, then everyone reads: replies must not cross.
                for (int round = 0; round < 3; round++) {
                    for (int i = 0; i < clients.size(); i++) {
                        byte[] b = ("client " + i + " round " + round).getBytes(StandardCharsets.UTF_8);
                        clients.get(i).send(new DatagramPacket(b, b.length, new InetSocketAddress(Net.LOOPBACK, port)));
                    }
                    for (int i = 0; i < clients.size(); i++) {
                        byte[] buf = new byte[256];
                        DatagramPacket p = new DatagramPacket(buf, buf.length);
                        clients.get(i).receive(p);
                        assertEquals("client " + i + " round " + round,
                                new String(p.getData(), 0, p.getLength(), StandardCharsets.UTF_8));
                        assertEquals(port, p.getPort(), "reply comes from the proxy's listen address");
                    }
                }
                assertEquals(200, d.flowCount());
            } finally {
                clients.forEach(DatagramSocket::close);
                d.stop();
            }
        }
    }

    /**
     * An upstream that is down (its port answers with ICMP port unreachable) and then comes back:
     * the client's later datagrams reach it and the replies come back, with no restart of anything.
     */
    @ParameterizedTest
    @MethodSource("transports")
    void anUpstreamThatWasDownIsReachedOnceItIsBack(Transport t) throws Exception {
        int upPort = freeUdpPort();
        int port = freeUdpPort();
        Daemon d = Proxies.start(dir, t, 1, proxy(port, upPort, ""));
        try (DatagramSocket c = new DatagramSocket(new InetSocketAddress(Net.LOOPBACK, 0))) {
            c.setSoTimeout(300);
            for (int i = 0; i < 3; i++) { // nobody there: each draws a port unreachable
                assertThrows(SocketTimeoutException.class, () -> roundTrip(c, port, "anyone?"));
            }
            try (UdpEcho back = new UdpEcho(new InetSocketAddress(Net.LOOPBACK, upPort))) {
                c.setSoTimeout(5000);
                assertEquals("back", roundTrip(c, port, "back"));
                assertEquals("again", roundTrip(c, port, "again"));
            }
        } finally {
            d.stop();
        }
    }

    /**
     * A flow's upstream socket is of the upstream's family: AF_INET for an IPv4 upstream (no
     * dual-stack socket mapping every datagram to IPv4), AF_INET6 for an IPv6 one; both relay.
     */
    @ParameterizedTest
    @MethodSource("transports")
    void aFlowsSocketIsOfItsUpstreamsFamily(Transport t) throws Exception {
        try (UdpEcho four = new UdpEcho(); UdpEcho six = new UdpEcho(new InetSocketAddress("::1", 0))) {
            int p4 = freeUdpPort();
            int p6 = freeUdpPort();
            Daemon d = Proxies.start(dir, t, 1, proxy(p4, four.port(), "")
                    + "u6 { protocol = udp, listen = \"127.0.0.1:" + p6 + "\", upstreams = \"[::1]:" + six.port() + "\" }\n");
            try (DatagramSocket c = new DatagramSocket(new InetSocketAddress(Net.LOOPBACK, 0))) {
                c.setSoTimeout(5000);
                assertEquals("to four", roundTrip(c, p4, "to four"));
                assertEquals("to six", roundTrip(c, p6, "to six"));
                String port4 = String.format(":%04X ", four.port());
                String port6 = String.format(":%04X ", six.port());
                List<String> udp = remoteAddresses("/proc/net/udp");
                List<String> udp6 = remoteAddresses("/proc/net/udp6");
                assertTrue(udp.contains("0100007F" + port4), "an AF_INET socket connected to 127.0.0.1: " + udp);
                assertTrue(udp6.stream().noneMatch(a -> a.endsWith(port4)), "no AF_INET6 one: " + udp6);
                assertTrue(udp6.contains("00000000000000000000000001000000" + port6),
                        "an AF_INET6 socket connected to ::1: " + udp6);
            } finally {
                d.stop();
            }
        }
    }

    /** The rem_address column of a /proc/net/udp* table, each followed by a space. */
    private static List<String> remoteAddresses(String table) throws IOException {
        return java.nio.file.Files.readAllLines(Path.of(table)).stream().skip(1)
                .map(l -> l.trim().split("\\s+")[2] + " ").toList();
    }

    @ParameterizedTest
    @MethodSource("transports")
    void aDatagramOf65507BytesPassesWhole(Transport t) throws Exception {
        try (UdpEcho up = new UdpEcho(); DatagramSocket c = new DatagramSocket(new InetSocketAddress(Net.LOOPBACK, 0))) {
            c.setSoTimeout(5000);
            c.setReceiveBufferSize(1 << 20);
            int port = freeUdpPort();
            Daemon d = Proxies.start(dir, t, 1, proxy(port, up.port(), ""));
            try {
                byte[] big = new byte[65507];
                new java.util.Random(7).nextBytes(big);
                c.send(new DatagramPacket(big, big.length, new InetSocketAddress(Net.LOOPBACK, port)));
                byte[] buf = new byte[65536];
                DatagramPacket p = new DatagramPacket(buf, buf.length);
                c.receive(p);
                assertEquals(big.length, p.getLength());
                assertTrue(java.util.Arrays.equals(big, 0, big.length, buf, 0, p.getLength()), "bytes intact");
            } finally {
                d.stop();
            }
        }
    }

    /**
     * Sent back to back, the datagrams queue on the listening socket and are read in batches
     * (recvmmsg on epoll): a largest one between small ones must come through whole, and so must
     * every small one.
     */
    /**
     * During a takeover, datagrams of clients whose flow has not arrived yet wait, then go on in
     * order. Each waits as a copy of its own size: on io_uring a datagram is read into a 64 KiB
     * (or larger) buffer, and 2,000 waiting slices of those would pin 128 MiB of the 256 MiB of
     * direct memory (a successor reading an inherited full socket buffer ran out of it).
     */
    @ParameterizedTest
    @MethodSource("transports")
    void datagramsWaitingForTheirFlowGoOnInOrderAndPinNoReceiveBuffers(Transport t) throws Exception {
        int clients = 40;
        int each = 50; // a new flow holds up to 64 datagrams while its upstream socket is made
        try (UdpEcho up = new UdpEcho()) {
            int port = freeUdpPort();
            Daemon d = Proxies.start(dir, t, 1, proxy(port, up.port(), ""));
            List<DatagramSocket> cs = new ArrayList<>();
            try {
                io.netty.buffer.PooledByteBufAllocatorMetric pool = io.netty.buffer.PooledByteBufAllocator.DEFAULT.metric();
                d.deferNewUdpFlows();
                d.workers().loop(0).submit(() -> { }).get(5, TimeUnit.SECONDS); // deferring now (a task on the worker)
                long before = pool.usedDirectMemory();
                for (int i = 0; i < clients; i++) {
                    DatagramSocket c = new DatagramSocket(new InetSocketAddress(Net.LOOPBACK, 0));
                    c.setSoTimeout(5000);
                    c.setReceiveBufferSize(1 << 20);
                    cs.add(c);
                }
                byte[] b = new byte[64];
                for (int n = 0; n < each; n++) {
                    for (int i = 0; i < clients; i++) {
                        java.nio.ByteBuffer.wrap(b).putInt(n);
                        cs.get(i).send(new DatagramPacket(b, b.length, new InetSocketAddress(Net.LOOPBACK, port)));
                    }
                    if (n % 10 == 9) {
                        Thread.sleep(1); // stay under the socket buffer
                    }
                }
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                while (d.udpProxy("u").stats().datagramsIn.sum() < (long) clients * each && System.nanoTime() < deadline) {
                    Thread.sleep(10);
                }
                assertEquals((long) clients * each, d.udpProxy("u").stats().datagramsIn.sum(), "datagrams read");
                long pinned = pool.usedDirectMemory() - before;
                assertTrue(pinned < 16 << 20, "direct memory held by " + clients * each + " waiting datagrams: " + pinned);
                assertTrue(up.sources.isEmpty(), "nothing reaches the upstream while flows are deferred");

                d.openDeferredUdpFlows();
                byte[] buf = new byte[2048];
                for (int i = 0; i < clients; i++) {
                    for (int n = 0; n < each; n++) {
                        DatagramPacket p = new DatagramPacket(buf, buf.length);
                        cs.get(i).receive(p);
                        assertEquals(n, java.nio.ByteBuffer.wrap(buf).getInt(), "client " + i + ": reply in order");
                    }
                }
                assertEquals(clients, d.flowCount(), "one flow per client");
            } finally {
                for (DatagramSocket c : cs) {
                    c.close();
                }
                d.stop();
            }
        }
    }

    /**
     * Replies are sent back from the listening socket at once where the transport can (epoll),
     * queued on it otherwise: either way a burst of them reaches the client whole and in order.
     */
    @ParameterizedTest
    @MethodSource("transports")
    void aBurstOfRepliesReachesTheClientInOrder(Transport t) throws Exception {
        int bursts = 100;
        int burst = 20;
        java.util.concurrent.Semaphore received = new java.util.concurrent.Semaphore(0);
        try (DatagramSocket up = new DatagramSocket(new InetSocketAddress(Net.LOOPBACK, 0));
             DatagramSocket c = new DatagramSocket(new InetSocketAddress(Net.LOOPBACK, 0))) {
            c.setSoTimeout(5000);
            Thread sender = new Thread(() -> {
                try {
                    byte[] buf = new byte[2048];
                    DatagramPacket ask = new DatagramPacket(buf, buf.length);
                    up.receive(ask);
                    for (int i = 0; i < bursts * burst; i++) {
                        byte[] b = ("reply " + i + " " + "x".repeat(i % 300)).getBytes(StandardCharsets.UTF_8);
                        up.send(new DatagramPacket(b, b.length, ask.getSocketAddress()));
                        if (i % burst == burst - 1 && !received.tryAcquire(5, TimeUnit.SECONDS)) {
                            return; // the client stopped: the test has failed
                        }
                    }
                } catch (IOException | InterruptedException e) {
                    // the test fails on what it does not receive
                }
            }, "udp-burst");
            sender.setDaemon(true);
            sender.start();
            int port = freeUdpPort();
            Daemon d = Proxies.start(dir, t, 1, proxy(port, up.getLocalPort(), ""));
            try {
                byte[] go = "go".getBytes(StandardCharsets.UTF_8);
                c.send(new DatagramPacket(go, go.length, new InetSocketAddress(Net.LOOPBACK, port)));
                byte[] buf = new byte[2048];
                for (int i = 0; i < bursts * burst; i++) {
                    DatagramPacket p = new DatagramPacket(buf, buf.length);
                    c.receive(p);
                    assertEquals("reply " + i + " " + "x".repeat(i % 300),
                            new String(p.getData(), 0, p.getLength(), StandardCharsets.UTF_8));
                    if (i % burst == burst - 1) {
                        received.release(); // the next burst only once this one is through: none lost to a full buffer
                    }
                }
            } finally {
                d.stop();
            }
        }
    }

    /**
     * A client's datagrams reach the upstream in the order sent, though the first of a read batch
     * goes out at once (epoll) and the rest of the batch queue and go out together at its end.
     * The upstream echoes in the order it receives; replies keep their order (the test above).
     */
    @ParameterizedTest
    @MethodSource("transports")
    void aBurstFromOneClientReachesTheUpstreamInOrder(Transport t) throws Exception {
        int bursts = 50;
        int burst = 20;
        throughEcho(t, (c, port, d) -> {
            byte[] buf = new byte[2048];
            for (int b = 0; b < bursts; b++) {
                for (int i = 0; i < burst; i++) {
                    byte[] m = ("datagram " + (b * burst + i)).getBytes(StandardCharsets.UTF_8);
                    c.send(new DatagramPacket(m, m.length, new InetSocketAddress(Net.LOOPBACK, port)));
                }
                for (int i = 0; i < burst; i++) {
                    DatagramPacket p = new DatagramPacket(buf, buf.length);
                    c.receive(p);
                    assertEquals("datagram " + (b * burst + i), new String(p.getData(), 0, p.getLength(),
                            StandardCharsets.UTF_8));
                }
            }
            assertEquals(1 + bursts * burst, d.udpProxy("u").stats().datagramsOut.sum(), "each sent once");
        });
    }

    private interface EchoExchange {
        void run(DatagramSocket client, int port, Daemon d) throws Exception;
    }

    /**
     * Runs {@code exchange} from a client socket through a one-worker UDP proxy in front of an echo
     * upstream, after one round trip that has opened the client's flow.
     */
    private void throughEcho(Transport t, EchoExchange exchange) throws Exception {
        try (UdpEcho up = new UdpEcho(); DatagramSocket c = new DatagramSocket(new InetSocketAddress(Net.LOOPBACK, 0))) {
            c.setSoTimeout(5000);
            c.setReceiveBufferSize(1 << 20);
            int port = freeUdpPort();
            Daemon d = Proxies.start(dir, t, 1, proxy(port, up.port(), ""));
            try {
                assertEquals("warm", roundTrip(c, port, "warm"));
                exchange.run(c, port, d);
            } finally {
                d.stop();
            }
        }
    }

    @ParameterizedTest
    @MethodSource("transports")
    void aBurstOfSmallAndLargestDatagramsPassesWhole(Transport t) throws Exception {
        throughEcho(t, (c, port, d) -> {
            int[] sizes = {64, 1, 64, 65507, 64, 200, 64, 1472, 64, 64, 30000, 64, 64, 9000, 64};
            java.util.Map<Integer, byte[]> sent = new java.util.HashMap<>();
            java.util.Random r = new java.util.Random(11);
            for (int i = 0; i < sizes.length; i++) {
                byte[] b = new byte[Math.max(sizes[i], 1)];
                r.nextBytes(b);
                b[0] = (byte) i; // tells the replies apart
                sent.put(i, b);
                c.send(new DatagramPacket(b, b.length, new InetSocketAddress(Net.LOOPBACK, port)));
            }
            byte[] buf = new byte[65536];
            for (int n = 0; n < sizes.length; n++) {
                DatagramPacket p = new DatagramPacket(buf, buf.length);
                c.receive(p);
                byte[] want = sent.remove((int) buf[0]);
                assertTrue(want != null, "reply " + buf[0] + " once");
                assertEquals(want.length, p.getLength(), "length of datagram " + buf[0]);
                assertTrue(java.util.Arrays.equals(want, 0, want.length, buf, 0, p.getLength()),
                        "bytes of datagram " + buf[0] + " intact");
            }
        });
    }

    @ParameterizedTest
    @MethodSource("transports")
    void idleFlowExpiresAndTheNextDatagramOpensANewOne(Transport t) throws Exception {
        try (UdpEcho up = new UdpEcho(); DatagramSocket c = new DatagramSocket(new InetSocketAddress(Net.LOOPBACK, 0))) {
            c.setSoTimeout(5000);
            int port = freeUdpPort();
            Daemon d = Proxies.start(dir, t, 1, proxy(port, up.port(), "flow-idle-timeout = 200ms"));
            try {
                assertEquals("one", roundTrip(c, port, "one"));
                assertEquals("two", roundTrip(c, port, "two"));
                int first = up.sources.take();
                assertEquals(first, up.sources.take(), "same flow while active");
                // Wait (bounded) until the flow is gone; the expiry itself is the daemon's business.
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                while (d.flowCount() > 0 && System.nanoTime() < deadline) {
                    Thread.sleep(20);
                }
                assertEquals(0, d.flowCount(), "flow expired within 10s of a 200ms idle timeout");
                assertEquals("three", roundTrip(c, port, "three"));
                int second = up.sources.take();
                assertNotEquals(first, second, "a new flow has a new upstream source port");
            } finally {
                d.stop();
            }
        }
    }

    @ParameterizedTest
    @MethodSource("transports")
    void sixthClientIsDroppedAtMaxFlows(Transport t) throws Exception {
        try (UdpEcho up = new UdpEcho()) {
            int port = freeUdpPort();
            Daemon d = Proxies.start(dir, t, 1, proxy(port, up.port(), "max-flows = 5, flow-idle-timeout = 1h"));
            List<DatagramSocket> clients = new ArrayList<>();
            try {
                for (int i = 0; i < 6; i++) {
                    DatagramSocket s = new DatagramSocket(new InetSocketAddress(Net.LOOPBACK, 0));
                    s.setSoTimeout(5000);
                    clients.add(s);
                }
                for (int i = 0; i < 5; i++) {
                    assertEquals("c" + i, roundTrip(clients.get(i), port, "c" + i));
                }
                DatagramSocket sixth = clients.get(5);
                sixth.setSoTimeout(1000);
                assertThrows(SocketTimeoutException.class, () -> roundTrip(sixth, port, "c5"));
                UdpProxy p = d.udpProxy("u");
                assertNotNull(p);
                assertTrue(p.stats().dropped.sum() > 0, "dropped counted");
                assertEquals(5, d.flowCount());
                // The five existing flows still work.
                assertEquals("again", roundTrip(clients.get(0), port, "again"));
            } finally {
                clients.forEach(DatagramSocket::close);
                d.stop();
            }
        }
    }
}
