package dev.baton.tcp;

import dev.baton.daemon.Daemon;
import dev.baton.socket.Transport;
import dev.baton.testkit.EchoServer;
import dev.baton.testkit.Net;
import dev.baton.testkit.Proxies;
import dev.baton.testkit.ProxyHeaders;
import dev.baton.testkit.ProxyHeaders.Header;
import dev.baton.testkit.TcpHeaderEcho;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.haproxy.HAProxyCommand;
import io.netty.handler.codec.haproxy.HAProxyMessage;
import io.netty.handler.codec.haproxy.HAProxyMessageDecoder;
import io.netty.handler.codec.haproxy.HAProxyProtocolVersion;
import io.netty.handler.codec.haproxy.HAProxyProxiedProtocol;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * PROXY protocol on TCP over real loopback sockets, for every transport: the header baton sends
 * (parsed by hand, and once by Netty's decoder), and headers accepted from trusted sources.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ProxyProtocolTest {
    @TempDir
    Path dir;

    static java.util.stream.Stream<Transport> transports() {
        return Net.transports();
    }

    private static Socket connect(InetAddress to, int port) throws IOException {
        Socket s = new Socket();
        s.connect(new InetSocketAddress(to, port), 5000);
        s.setSoTimeout(30_000);
        return s;
    }

    /** Sends {@code prefix} then {@code size} random bytes and a FIN; asserts the random bytes come back intact. */
    private static void echoChecked(Socket s, byte[] prefix, int size) throws Exception {
        byte[] data = new byte[size];
        new Random(size).nextBytes(data);
        CRC32 sent = new CRC32();
        sent.update(data);
        CompletableFuture<Void> writer = CompletableFuture.runAsync(() -> {
            try {
                OutputStream out = s.getOutputStream();
                out.write(prefix);
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
        assertEquals(size, total, "bytes echoed back after the header");
        assertEquals(sent.getValue(), got.getValue(), "CRC32 of the bytes after the header");
    }

    private static String proxy(String listen, int upstream, String extra) {
        return "p { listen = " + listen + ", upstreams = \"127.0.0.1:" + upstream + "\", " + extra + " }\n";
    }

    @ParameterizedTest
    @MethodSource("transports")
    void v1HeaderComesFirstAndNamesTheClientAndTheAddressItReached(Transport t) throws Exception {
        try (TcpHeaderEcho up = new TcpHeaderEcho()) {
            int port = Net.freePort();
            Daemon d = Proxies.start(dir, t, 2, proxy("\"127.0.0.1:" + port + "\"", up.port(), "proxy-protocol = v1"));
            try (Socket s = connect(Net.LOOPBACK, port)) {
                echoChecked(s, new byte[0], 1 << 20);
                Header h = up.next();
                assertEquals(1, h.version());
                assertEquals("PROXY", h.command());
                assertEquals("TCP4", h.protocol());
                assertEquals(s.getLocalSocketAddress(), h.source(), "the client's own address and port");
                assertEquals(new InetSocketAddress(Net.LOOPBACK, port), h.destination(), "the address it reached");
            } finally {
                d.stop();
            }
        }
    }

    @ParameterizedTest
    @MethodSource("transports")
    void v2HeaderOnWildcardListenersNamesTheRealLocalAddressInTheRightFamily(Transport t) throws Exception {
        try (TcpHeaderEcho up = new TcpHeaderEcho()) {
            int dual = Net.freePort();
            int v4 = Net.freePort();
            Daemon d = Proxies.start(dir, t, 2,
                    "six { listen = \"[::]:" + dual + "\", ipv6-only = false, upstreams = \"127.0.0.1:" + up.port()
                            + "\", proxy-protocol = v2 }\n"
                            + "four { listen = \"0.0.0.0:" + v4 + "\", upstreams = \"127.0.0.1:" + up.port()
                            + "\", proxy-protocol = v2 }\n");
            try {
                InetAddress ip6 = InetAddress.getByName("::1");
                try (Socket s = connect(ip6, dual)) {
                    echoChecked(s, new byte[0], 100_000);
                    Header h = up.next();
                    assertEquals(2, h.version());
                    assertEquals("PROXY", h.command());
                    assertEquals("TCP6", h.protocol());
                    assertEquals(s.getLocalSocketAddress(), h.source());
                    assertEquals(new InetSocketAddress(ip6, dual), h.destination());
                }
                // An IPv4 client of the dual-stack socket shows as ::ffff:127.0.0.1 there: sent as TCP4.
                try (Socket s = connect(Net.LOOPBACK, dual)) {
                    echoChecked(s, new byte[0], 100_000);
                    Header h = up.next();
                    assertEquals("TCP4", h.protocol());
                    assertEquals(s.getLocalSocketAddress(), h.source());
                    assertEquals(new InetSocketAddress(Net.LOOPBACK, dual), h.destination());
                }
                // 0.0.0.0 accepted a connection to 127.0.0.2: that address, not the wildcard, is the destination.
                InetAddress other = InetAddress.getByName("127.0.0.2");
                try (Socket s = connect(other, v4)) {
                    echoChecked(s, new byte[0], 100_000);
                    Header h = up.next();
                    assertEquals("TCP4", h.protocol());
                    assertEquals(s.getLocalSocketAddress(), h.source());
                    assertEquals(new InetSocketAddress(other, v4), h.destination());
                }
            } finally {
                d.stop();
            }
        }
    }

    @ParameterizedTest
    @MethodSource("transports")
    void nettysDecoderReadsTheSameV2Header(Transport t) throws Exception {
        BlockingQueue<byte[]> raw = new LinkedBlockingQueue<>();
        try (EchoServer up = new EchoServer(s -> raw.add(s.getInputStream().readAllBytes()))) {
            int port = Net.freePort();
            Daemon d = Proxies.start(dir, t, 1, proxy("\"127.0.0.1:" + port + "\"", up.port(), "proxy-protocol = v2"));
            try (Socket s = connect(Net.LOOPBACK, port)) {
                s.getOutputStream().write("after".getBytes(StandardCharsets.US_ASCII));
                s.shutdownOutput();
                byte[] bytes = raw.poll(20, TimeUnit.SECONDS);
                assertNotNull(bytes);
                EmbeddedChannel ch = new EmbeddedChannel(new HAProxyMessageDecoder());
                ch.writeInbound(Unpooled.wrappedBuffer(bytes));
                HAProxyMessage m = ch.readInbound();
                try {
                    assertEquals(HAProxyProtocolVersion.V2, m.protocolVersion());
                    assertEquals(HAProxyCommand.PROXY, m.command());
                    assertEquals(HAProxyProxiedProtocol.TCP4, m.proxiedProtocol());
                    assertEquals("127.0.0.1", m.sourceAddress());
                    assertEquals(s.getLocalPort(), m.sourcePort());
                    assertEquals("127.0.0.1", m.destinationAddress());
                    assertEquals(port, m.destinationPort());
                } finally {
                    m.release();
                }
                io.netty.buffer.ByteBuf rest = ch.readInbound();
                assertEquals("after", rest.toString(StandardCharsets.US_ASCII));
                rest.release();
                ch.finishAndReleaseAll();
            } finally {
                d.stop();
            }
        }
    }

    /**
     * The upstream's accept queue is full, so baton's connect waits for a SYN retransmit (about
     * a second) while the client's request and FIN arrive: the header still goes first.
     */
    @ParameterizedTest
    @MethodSource("transports")
    void headerGoesBeforeBytesTheClientSentWhileTheUpstreamWasConnecting(Transport t) throws Exception {
        try (ServerSocket backend = new ServerSocket(0, 1, Net.LOOPBACK)) {
            List<Socket> fillers = new ArrayList<>();
            try {
                for (int i = 0; i < 8; i++) {
                    Socket f = new Socket();
                    try {
                        f.connect(backend.getLocalSocketAddress(), 300);
                        fillers.add(f);
                    } catch (SocketTimeoutException full) {
                        f.close();
                        break;
                    }
                }
                int port = Net.freePort();
                Daemon d = Proxies.start(dir, t, 1, proxy("\"127.0.0.1:" + port + "\"", backend.getLocalPort(),
                        "proxy-protocol = v2"));
                try (Socket s = connect(Net.LOOPBACK, port)) {
                    byte[] request = "early request".getBytes(StandardCharsets.US_ASCII);
                    s.getOutputStream().write(request);
                    s.shutdownOutput();
                    Thread.sleep(300); // the request and FIN are there before the upstream is
                    for (Socket f : fillers) {
                        f.close();
                    }
                    Socket got = null;
                    backend.setSoTimeout(20_000);
                    while (got == null) {
                        Socket a = backend.accept();
                        a.setSoTimeout(20_000);
                        InputStream in = a.getInputStream();
                        int first = in.read();
                        if (first < 0) {
                            a.close(); // a filler
                            continue;
                        }
                        got = a;
                        Header h = ProxyHeaders.read(new java.io.SequenceInputStream(
                                new java.io.ByteArrayInputStream(new byte[] {(byte) first}), in));
                        assertEquals("TCP4", h.protocol());
                        assertEquals(s.getLocalSocketAddress(), h.source());
                        assertEquals(new InetSocketAddress(Net.LOOPBACK, port), h.destination());
                        assertArrayEquals(request, in.readAllBytes(), "the early bytes follow the header, then EOF");
                        a.getOutputStream().write("ok".getBytes(StandardCharsets.US_ASCII));
                        a.close();
                    }
                    assertEquals("ok", new String(s.getInputStream().readAllBytes(), StandardCharsets.US_ASCII));
                } finally {
                    d.stop();
                }
            } finally {
                for (Socket f : fillers) {
                    f.close();
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource("transports")
    void trustedSourceHeaderV1OrV2ReplacesTheAddressesAndTheBytesAfterItFollow(Transport t) throws Exception {
        try (TcpHeaderEcho up = new TcpHeaderEcho()) {
            int port = Net.freePort();
            Daemon d = Proxies.start(dir, t, 2, proxy("\"127.0.0.1:" + port + "\"", up.port(),
                    "proxy-protocol = v2, accept-proxy-protocol = [\"10.0.0.0/8\", \"127.0.0.1/32\"]"));
            try {
                // v1 in, header and payload and FIN in one go (all of it early data).
                try (Socket s = connect(Net.LOOPBACK, port)) {
                    byte[] in = "PROXY TCP4 203.0.113.7 198.51.100.9 40000 443\r\n".getBytes(StandardCharsets.US_ASCII);
                    echoChecked(s, in, 300_000);
                    Header h = up.next();
                    assertEquals(2, h.version());
                    assertEquals("TCP4", h.protocol());
                    assertEquals(new InetSocketAddress(InetAddress.getByName("203.0.113.7"), 40000), h.source());
                    assertEquals(new InetSocketAddress(InetAddress.getByName("198.51.100.9"), 443), h.destination());
                }
                // v2 in, IPv6 addresses.
                try (Socket s = connect(Net.LOOPBACK, port)) {
                    InetSocketAddress src = new InetSocketAddress(InetAddress.getByName("2001:db8::7"), 51000);
                    InetSocketAddress dst = new InetSocketAddress(InetAddress.getByName("2001:db8::1"), 8443);
                    echoChecked(s, ProxyHeaders.v2(true, src, dst), 300_000);
                    Header h = up.next();
                    assertEquals("TCP6", h.protocol());
                    assertEquals(src, h.source());
                    assertEquals(dst, h.destination());
                }
                // LOCAL (a balancer's own health check): the connection's own addresses are sent.
                try (Socket s = connect(Net.LOOPBACK, port)) {
                    byte[] local = ProxyHeaders.v2(true, new InetSocketAddress(Net.LOOPBACK, 1),
                            new InetSocketAddress(Net.LOOPBACK, 2));
                    local[12] = 0x20; // version 2, command LOCAL
                    echoChecked(s, local, 1000);
                    Header h = up.next();
                    assertEquals(s.getLocalSocketAddress(), h.source());
                    assertEquals(new InetSocketAddress(Net.LOOPBACK, port), h.destination());
                }
            } finally {
                d.stop();
            }
        }
    }

    @ParameterizedTest
    @MethodSource("transports")
    void sourceHashUsesTheAddressFromTheTrustedHeader(Transport t) throws Exception {
        try (TcpHeaderEcho a = new TcpHeaderEcho(); TcpHeaderEcho b = new TcpHeaderEcho()) {
            int port = Net.freePort();
            Daemon d = Proxies.start(dir, t, 2, "p { listen = \"127.0.0.1:" + port + "\", upstreams = [\"127.0.0.1:"
                    + a.port() + "\", \"127.0.0.1:" + b.port() + "\"], balance = source-hash, proxy-protocol = v1, "
                    + "accept-proxy-protocol = \"127.0.0.1\" }\n");
            try {
                Map<String, String> backendOf = new HashMap<>();
                for (int round = 0; round < 2; round++) {
                    for (int i = 1; i <= 12; i++) {
                        String client = "203.0.113." + i;
                        try (Socket s = connect(Net.LOOPBACK, port)) {
                            echoChecked(s, ("PROXY TCP4 " + client + " 192.0.2.1 5000 80\r\n")
                                    .getBytes(StandardCharsets.US_ASCII), 100);
                        }
                        Object ha = a.headers.poll(100, TimeUnit.MILLISECONDS);
                        Object hb = ha != null ? null : b.headers.poll(20, TimeUnit.SECONDS);
                        Header h = (Header) (ha != null ? ha : hb);
                        assertNotNull(h, "one backend got connection " + client);
                        assertEquals(InetAddress.getByName(client), h.source().getAddress());
                        String which = ha != null ? "a" : "b";
                        String before = backendOf.putIfAbsent(client, which);
                        assertTrue(before == null || before.equals(which), client + " went to " + before
                                + " and then to " + which);
                    }
                }
                assertEquals(2, new java.util.HashSet<>(backendOf.values()).size(),
                        "12 client addresses from one peer spread over both upstreams: " + backendOf);
            } finally {
                d.stop();
            }
        }
    }

    @ParameterizedTest
    @MethodSource("transports")
    void untrustedSourceIsRelayedUntouched(Transport t) throws Exception {
        try (TcpHeaderEcho up = new TcpHeaderEcho()) {
            int port = Net.freePort();
            Daemon d = Proxies.start(dir, t, 1, proxy("\"127.0.0.1:" + port + "\"", up.port(),
                    "proxy-protocol = v1, accept-proxy-protocol = [\"10.0.0.0/8\", \"::1/128\"]"));
            try (Socket s = connect(Net.LOOPBACK, port)) {
                // Looks like a header, but 127.0.0.1 is not trusted: these are the client's own bytes.
                byte[] fake = "PROXY TCP4 6.6.6.6 7.7.7.7 1 2\r\n".getBytes(StandardCharsets.US_ASCII);
                OutputStream out = s.getOutputStream();
                out.write(fake);
                s.shutdownOutput();
                assertArrayEquals(fake, s.getInputStream().readAllBytes(), "echoed exactly");
                Header h = up.next();
                assertEquals(s.getLocalSocketAddress(), h.source(), "baton's header names the real peer");
            } finally {
                d.stop();
            }
        }
    }

    @ParameterizedTest
    @MethodSource("transports")
    void malformedOrMissingHeaderFromATrustedSourceClosesTheConnection(Transport t) throws Exception {
        try (TcpHeaderEcho up = new TcpHeaderEcho()) {
            int port = Net.freePort();
            Daemon d = Proxies.start(dir, t, 1, proxy("\"127.0.0.1:" + port + "\"", up.port(),
                    "proxy-protocol = v2, accept-proxy-protocol = [\"127.0.0.0/8\"], tcp { connect-timeout = 1s }"));
            try {
                try (Socket s = connect(Net.LOOPBACK, port)) {
                    s.getOutputStream().write("GET / HTTP/1.1\r\nHost: x\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
                    assertClosed(s);
                }
                try (Socket s = connect(Net.LOOPBACK, port)) {
                    byte[] bad = ProxyHeaders.v2(true, new InetSocketAddress(Net.LOOPBACK, 1),
                            new InetSocketAddress(Net.LOOPBACK, 2));
                    bad[12] = 0x31; // version 3
                    s.getOutputStream().write(bad);
                    assertClosed(s);
                }
                try (Socket s = connect(Net.LOOPBACK, port)) {
                    assertClosed(s); // says nothing: closed after connect-timeout
                }
                assertNull(up.headers.poll(200, TimeUnit.MILLISECONDS), "no upstream connection was made");
                assertEquals(0, up.server.accepted().size());
                String status = String.join("\n", d.proxyStatus());
                assertTrue(status.contains("bad-proxy-header=3"), status);
            } finally {
                d.stop();
            }
        }
    }

    private static void assertClosed(Socket s) throws IOException {
        s.setSoTimeout(20_000);
        ByteArrayOutputStream got = new ByteArrayOutputStream();
        try {
            s.getInputStream().transferTo(got);
        } catch (SocketException reset) {
            // a reset is a close too
        }
        assertEquals(0, got.size(), "nothing relayed back");
    }
}
