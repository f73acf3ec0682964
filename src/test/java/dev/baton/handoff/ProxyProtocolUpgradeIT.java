package dev.baton.handoff;

import dev.baton.testkit.Net;
import dev.baton.testkit.ProxyHeaders.Header;
import dev.baton.testkit.TcpHeaderEcho;
import dev.baton.testkit.UdpHeaderEcho;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.InputStream;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * PROXY protocol across an upgrade of the real launcher: a connection whose header went out
 * moves without a second one, a trusted connection still waiting for its header moves once it
 * has one, and a UDP flow keeps one header per datagram.
 */
class ProxyProtocolUpgradeIT {
    @TempDir
    Path dir;

    private static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }

    private static byte[] read(Socket s, int n) throws Exception {
        byte[] b = s.getInputStream().readNBytes(n);
        assertEquals(n, b.length, "connection ended early");
        return b;
    }

    private static byte[] roundTrip(DatagramSocket c, InetSocketAddress to, byte[] payload) throws Exception {
        c.send(new DatagramPacket(payload, payload.length, to));
        byte[] buf = new byte[2048];
        DatagramPacket p = new DatagramPacket(buf, buf.length);
        c.receive(p);
        return Arrays.copyOf(p.getData(), p.getLength());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.baton.testkit.Net#handoffTransports")
    void headersAreSentOnceAcrossAnUpgrade(String transport) throws Exception {
        try (TcpHeaderEcho tcpUp = new TcpHeaderEcho(); UdpHeaderEcho udpUp = new UdpHeaderEcho()) {
            int web = Net.freePort();
            int lb = Net.freePort();
            int dns = Net.freePort();
            String config = "baton {\n  transport = " + transport + "\n  workers = 2\n  drain-timeout = 20s\n"
                    + "  upgrade-timeout = 30s\n  control-socket = \"" + dir.resolve("ctl.sock") + "\"\n"
                    + "  proxies {\n"
                    + "    web { listen = \"127.0.0.1:" + web + "\", upstreams = \"127.0.0.1:" + tcpUp.port()
                    + "\", proxy-protocol = v1 }\n"
                    + "    lb { listen = \"127.0.0.1:" + lb + "\", upstreams = \"127.0.0.1:" + tcpUp.port()
                    + "\", proxy-protocol = v2, accept-proxy-protocol = [\"127.0.0.1/32\"],"
                    + " tcp { connect-timeout = 60s } }\n"
                    + "    dns { protocol = udp, listen = \"127.0.0.1:" + dns + "\", upstreams = \"127.0.0.1:"
                    + udpUp.port() + "\", proxy-protocol = v2 }\n"
                    + "  }\n}\n";
            try (BatonProcess baton = new BatonProcess(BatonProcess.distribution().resolve("bin/baton"), dir, config);
                 Socket a = new Socket(); Socket b = new Socket();
                 DatagramSocket c = new DatagramSocket(new InetSocketAddress(Net.LOOPBACK, 0))) {
                a.connect(new InetSocketAddress(Net.LOOPBACK, web), 5000);
                a.setSoTimeout(30_000);
                a.getOutputStream().write(ascii("before"));
                assertArrayEquals(ascii("before"), read(a, 6));
                Header ha = tcpUp.next();
                assertEquals("TCP4", ha.protocol());
                assertEquals(a.getLocalSocketAddress(), ha.source());

                b.connect(new InetSocketAddress(Net.LOOPBACK, lb), 5000); // trusted: says nothing yet
                b.setSoTimeout(60_000);

                c.setSoTimeout(10_000);
                InetSocketAddress dnsAddress = new InetSocketAddress(Net.LOOPBACK, dns);
                assertArrayEquals(ascii("q1"), roundTrip(c, dnsAddress, ascii("q1")));
                UdpHeaderEcho.Received d1 = udpUp.next();

                CompletableFuture<BatonProcess.Result> upgrade = CompletableFuture.supplyAsync(() -> {
                    try {
                        return baton.cli("upgrade");
                    } catch (Exception e) {
                        throw new RuntimeException(e);
                    }
                });
                // Once the successor is ready the predecessor moves what it can and waits for b,
                // which has no upstream yet; then b's header arrives.
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
                while (!baton.logText().contains("ready after") && System.nanoTime() < deadline) {
                    Thread.sleep(20);
                }
                assertTrue(baton.logText().contains("ready after"), baton.logText());
                Thread.sleep(300);
                byte[] header = ascii("PROXY TCP4 203.0.113.9 198.51.100.1 1234 443\r\n");
                b.getOutputStream().write(header);
                b.getOutputStream().write(ascii("late"));
                assertArrayEquals(ascii("late"), read(b, 4));
                BatonProcess.Result r = upgrade.get(120, TimeUnit.SECONDS);
                assertEquals(0, r.code(), r.output() + "\n" + baton.logText());

                Header hb = tcpUp.next();
                assertEquals("TCP4", hb.protocol());
                assertEquals(new InetSocketAddress(InetAddress.getByName("203.0.113.9"), 1234), hb.source());

                // Both connections go on in the successor, with no second header.
                a.getOutputStream().write(ascii("after"));
                assertArrayEquals(ascii("after"), read(a, 5), "no header bytes in the stream");
                b.getOutputStream().write(ascii("again"));
                assertArrayEquals(ascii("again"), read(b, 5), "no header bytes in the stream");
                a.shutdownOutput();
                b.shutdownOutput();
                InputStream ai = a.getInputStream();
                assertEquals(-1, ai.read());
                assertEquals(-1, b.getInputStream().read());
                assertNull(tcpUp.headers.poll(200, TimeUnit.MILLISECONDS), "no other upstream connection");

                // The flow moved (same upstream socket) and still puts one header on each datagram.
                assertArrayEquals(ascii("q2"), roundTrip(c, dnsAddress, ascii("q2")));
                UdpHeaderEcho.Received d2 = udpUp.next();
                assertEquals(d1.sender(), d2.sender(), "same flow socket after the upgrade");
                assertEquals(d1.header(), d2.header());
                assertEquals(c.getLocalSocketAddress(), d2.header().source());
                assertArrayEquals(ascii("q2"), d2.payload());

                String log = baton.logText();
                assertTrue(log.contains("handed 2 connections and 1 flows"), log);
            }
        }
    }
}
