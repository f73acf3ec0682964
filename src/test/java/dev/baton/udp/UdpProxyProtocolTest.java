package dev.baton.udp;

import dev.baton.daemon.Daemon;
import dev.baton.socket.Transport;
import dev.baton.testkit.Net;
import dev.baton.testkit.Proxies;
import dev.baton.testkit.ProxyHeaders;
import dev.baton.testkit.ProxyHeaders.Header;
import dev.baton.testkit.UdpHeaderEcho;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.haproxy.HAProxyMessage;
import io.netty.handler.codec.haproxy.HAProxyMessageDecoder;
import io.netty.handler.codec.haproxy.HAProxyProxiedProtocol;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketTimeoutException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** PROXY protocol v2 on UDP over loopback, for every transport: a header on every datagram. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class UdpProxyProtocolTest {
    @TempDir
    Path dir;

    static java.util.stream.Stream<Transport> transports() {
        return Net.transports();
    }

    private static int freeUdpPort() throws IOException {
        try (DatagramSocket s = new DatagramSocket(new InetSocketAddress(Net.LOOPBACK, 0))) {
            return s.getLocalPort();
        }
    }

    private static String proxy(String listen, int upstream) {
        return "u { protocol = udp, listen = \"" + listen + "\", upstreams = \"127.0.0.1:" + upstream
                + "\", proxy-protocol = v2 }\n";
    }

    private static byte[] roundTrip(DatagramSocket c, InetSocketAddress to, byte[] payload) throws IOException {
        c.send(new DatagramPacket(payload, payload.length, to));
        byte[] buf = new byte[65536];
        DatagramPacket p = new DatagramPacket(buf, buf.length);
        c.receive(p);
        return Arrays.copyOf(p.getData(), p.getLength());
    }

    @ParameterizedTest
    @MethodSource("transports")
    void everyDatagramOfAFlowCarriesTheV2HeaderAndRepliesCarryNone(Transport t) throws Exception {
        try (UdpHeaderEcho up = new UdpHeaderEcho();
             DatagramSocket c = new DatagramSocket(new InetSocketAddress(Net.LOOPBACK, 0))) {
            c.setSoTimeout(5000);
            c.setReceiveBufferSize(1 << 20);
            int port = freeUdpPort();
            InetSocketAddress listen = new InetSocketAddress(Net.LOOPBACK, port);
            Daemon d = Proxies.start(dir, t, 2, proxy("127.0.0.1:" + port, up.port()));
            try {
                Random r = new Random(5);
                // The largest payload that still fits behind the 28-byte IPv4 header: 65507 - 28.
                int[] sizes = {1, 512, 1400, 9000, 65479, 3};
                int upstreamPort = -1;
                for (int size : sizes) {
                    byte[] payload = new byte[size];
                    r.nextBytes(payload);
                    assertArrayEquals(payload, roundTrip(c, listen, payload), "reply without a header");
                    UdpHeaderEcho.Received got = up.next();
                    Header h = got.header();
                    assertEquals(2, h.version());
                    assertEquals("PROXY", h.command());
                    assertEquals("UDP4", h.protocol());
                    assertEquals(c.getLocalSocketAddress(), h.source(), "the client's address and port");
                    assertEquals(listen, h.destination(), "the address the client sent to");
                    assertEquals(28, h.length());
                    assertArrayEquals(payload, got.payload(), size + "-byte payload intact after the header");
                    if (upstreamPort < 0) {
                        upstreamPort = h.source().getPort();
                    }
                }
                // Netty's decoder reads the same header from the raw datagram.
                byte[] payload = "cross-check".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
                roundTrip(c, listen, payload);
                EmbeddedChannel ch = new EmbeddedChannel(new HAProxyMessageDecoder());
                ch.writeInbound(Unpooled.wrappedBuffer(up.next().raw()));
                HAProxyMessage m = ch.readInbound();
                assertEquals(HAProxyProxiedProtocol.UDP4, m.proxiedProtocol());
                assertEquals("127.0.0.1", m.sourceAddress());
                assertEquals(c.getLocalPort(), m.sourcePort());
                assertEquals("127.0.0.1", m.destinationAddress());
                assertEquals(port, m.destinationPort());
                m.release();
                ByteBuf rest = ch.readInbound();
                assertEquals("cross-check", rest.toString(java.nio.charset.StandardCharsets.US_ASCII));
                rest.release();
                ch.finishAndReleaseAll();
                // One byte too many for the header: dropped and counted, not sent without it.
                long dropped = d.udpProxy("u").stats().dropped.sum();
                c.send(new DatagramPacket(new byte[65480], 65480, listen));
                c.setSoTimeout(1000);
                assertThrows(SocketTimeoutException.class, () -> c.receive(new DatagramPacket(new byte[10], 10)));
                assertEquals(dropped + 1, d.udpProxy("u").stats().dropped.sum());
            } finally {
                d.stop();
            }
        }
    }

    @ParameterizedTest
    @MethodSource("transports")
    void ipv6ClientsGetUdp6AndWildcardListenersNameTheirWildcard(Transport t) throws Exception {
        try (UdpHeaderEcho up = new UdpHeaderEcho()) {
            int six = freeUdpPort();
            int dual = freeUdpPort();
            Daemon d = Proxies.start(dir, t, 1, proxy("[::1]:" + six, up.port())
                    + proxy("[::]:" + dual, up.port()).replaceFirst("^u ", "w ").replace("protocol = udp,",
                    "protocol = udp, ipv6-only = false,"));
            InetAddress ip6 = InetAddress.getByName("::1");
            try (DatagramSocket c6 = new DatagramSocket(new InetSocketAddress(ip6, 0));
                 DatagramSocket c4 = new DatagramSocket(new InetSocketAddress(Net.LOOPBACK, 0))) {
                c6.setSoTimeout(5000);
                c4.setSoTimeout(5000);
                byte[] payload = {1, 2, 3};
                assertArrayEquals(payload, roundTrip(c6, new InetSocketAddress(ip6, six), payload));
                Header h = up.next().header();
                assertEquals("UDP6", h.protocol());
                assertEquals(c6.getLocalSocketAddress(), h.source());
                assertEquals(new InetSocketAddress(ip6, six), h.destination());
                // A UDP socket does not know which local address a datagram was sent to: a wildcard
                // listener names its wildcard, in the client's family.
                assertArrayEquals(payload, roundTrip(c4, new InetSocketAddress(Net.LOOPBACK, dual), payload));
                h = up.next().header();
                assertEquals("UDP4", h.protocol());
                assertEquals(c4.getLocalSocketAddress(), h.source());
                assertEquals(new InetSocketAddress(InetAddress.getByName("0.0.0.0"), dual), h.destination());
            } finally {
                d.stop();
            }
        }
    }
}
