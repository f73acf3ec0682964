package dev.baton.mapping;

import dev.baton.handoff.BatonProcess;
import dev.baton.testkit.NamedBackend;
import dev.baton.testkit.Net;
import dev.baton.testkit.Namespaces;
import dev.baton.testkit.ProxyHeaders;
import dev.baton.testkit.TcpHeaderEcho;
import dev.baton.testkit.UdpHeaderEcho;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.io.InputStream;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The real launcher mapping host ports into network namespaces wired the way docker0 and its
 * containers are: a bridge with an address on a private /24, two namespaces ("containers") each
 * with a veth pair whose inner end has an address and a default route via the bridge, and a third
 * namespace with nothing but loopback (no route from the host at all). Backends run inside the
 * namespaces; TCP and UDP, single ports and port ranges, upstream-netns into the unroutable
 * namespace and listen-netns exposing a host service inside a container; then a SIGHUP reload and
 * an upgrade, with connections and a flow through namespaces held open across both.
 */
@Timeout(value = 300, unit = TimeUnit.SECONDS)
class NamespaceIT {
    private static Namespaces lab;
    private static String subnet;
    private static String nsA;
    private static String nsB;
    private static String nsC;
    private static final List<NamedBackend> backends = new ArrayList<>();
    private static NamedBackend hostDb;

    @TempDir
    Path dir;

    @BeforeAll
    static void wire() throws Exception {
        String why = Namespaces.unavailable();
        assumeTrue(why == null, why);
        assertTrue(Files.isExecutable(BatonProcess.distribution().resolve("bin/baton")), "run mvn package first");
        lab = new Namespaces();
        subnet = "10.213." + ThreadLocalRandom.current().nextInt(1, 255);
        String bridge = lab.bridge("br", subnet + ".1/24");
        nsA = lab.add("a");
        lab.plug(nsA, bridge, "va", subnet + ".2/24", subnet + ".1");
        nsB = lab.add("b");
        lab.plug(nsB, bridge, "vb", subnet + ".3/24", subnet + ".1");
        nsC = lab.add("c");

        InetAddress a = InetAddress.getByName(subnet + ".2");
        InetAddress b = InetAddress.getByName(subnet + ".3");
        InetAddress lo = InetAddress.getLoopbackAddress();
        backends.add(Namespaces.in(nsA, () -> new NamedBackend("a-single", a, 7001)));
        backends.add(Namespaces.in(nsB, () -> new NamedBackend("b-single", b, 7002)));
        for (int i = 0; i < 4; i++) {
            int n = i;
            backends.add(Namespaces.in(nsA, () -> new NamedBackend("a-range" + n, a, 7100 + n)));
            backends.add(Namespaces.in(nsB, () -> new NamedBackend("b-range" + n, b, 7200 + n)));
        }
        backends.add(Namespaces.in(nsC, () -> new NamedBackend("c-hidden", lo, 7300)));
        hostDb = new NamedBackend("host-db", lo, 0);
        backends.add(hostDb);
    }

    @AfterAll
    static void unwire() throws Exception {
        for (NamedBackend b : backends) {
            b.close();
        }
        if (lab != null) {
            String tag = lab.tag();
            lab.close();
            assertFalse(Namespaces.ip("netns", "list").contains(tag), "namespaces left behind");
            assertFalse(Namespaces.ip("-o", "link", "show").contains(tag), "links left behind");
        }
    }

    private record Ports(int single, int range, int hidden, int extra) {
    }

    private String config(String transport, Ports p, boolean withExtra) {
        String b = Namespaces.path(nsB).toString();
        String c = Namespaces.path(nsC).toString();
        return "baton {\n"
                + "  transport = " + transport + "\n"
                + "  workers = 2\n"
                + "  drain-timeout = 2s\n"
                + "  upgrade-timeout = 60s\n"
                + "  control-socket = \"" + dir.resolve("ctl.sock") + "\"\n"
                + "  proxies {\n"
                + "    web { listen = \"0.0.0.0:" + p.single + "\", upstreams = \"" + subnet + ".2:7001\" }\n"
                + "    dns { protocol = udp, listen = \"0.0.0.0:" + p.single + "\", upstreams = \"" + subnet + ".3:7002\" }\n"
                + "    webr { listen = \"127.0.0.1:" + p.range + "-" + (p.range + 3) + "\", upstreams = \""
                + subnet + ".2:7100-7103\" }\n"
                + "    dnsr { protocol = udp, listen = \"127.0.0.1:" + p.range + "-" + (p.range + 3) + "\", upstreams = \""
                + subnet + ".3:7200-7203\" }\n"
                + "    hidden { listen = \"127.0.0.1:" + p.hidden + "\", upstreams = \"127.0.0.1:7300\", upstream-netns = \""
                + c + "\" }\n"
                + "    hiddenu { protocol = udp, listen = \"127.0.0.1:" + p.hidden + "\", upstreams = \"127.0.0.1:7300\","
                + " upstream-netns = \"" + c + "\" }\n"
                // Inside container b, on the very port "web" has on the host: the host's database.
                + "    db { listen = \"0.0.0.0:" + p.single + "\", listen-netns = \"" + b + "\", upstreams = \"127.0.0.1:"
                + hostDb.port() + "\" }\n"
                + "    dbu { protocol = udp, listen = \"0.0.0.0:" + p.single + "\", listen-netns = \"" + b
                + "\", upstreams = \"127.0.0.1:" + hostDb.port() + "\" }\n"
                + (withExtra ? "    extra { listen = \"127.0.0.1:" + p.extra + "\", upstreams = \"127.0.0.1:7300\","
                + " upstream-netns = \"" + c + "\" }\n" : "")
                + "  }\n"
                + "}\n";
    }

    private static String tcp(String host, int port) throws IOException {
        return NamedBackend.tcpName(new InetSocketAddress(host, port), 1 << 20);
    }

    /** From a socket on the calling thread's namespace's wildcard address. */
    private static String udp(String host, int port) throws IOException {
        try (DatagramSocket c = new DatagramSocket(0)) {
            return NamedBackend.udpName(c, new InetSocketAddress(host, port));
        }
    }

    /** Every mapping, checked from where its clients are. */
    private void checkAll(Ports p) throws Exception {
        assertEquals("a-single", tcp("127.0.0.1", p.single));
        assertEquals("b-single", udp("127.0.0.1", p.single));
        for (int i = 0; i < 4; i++) {
            assertEquals("a-range" + i, tcp("127.0.0.1", p.range + i));
            assertEquals("b-range" + i, udp("127.0.0.1", p.range + i));
        }
        assertEquals("c-hidden", tcp("127.0.0.1", p.hidden));
        assertEquals("c-hidden", udp("127.0.0.1", p.hidden));
        // Inside b, its loopback and its own address; from container a, over the bridge to b.
        assertEquals("host-db", Namespaces.in(nsB, () -> tcp("127.0.0.1", p.single)));
        assertEquals("host-db", Namespaces.in(nsB, () -> udp("127.0.0.1", p.single)));
        assertEquals("host-db", Namespaces.in(nsB, () -> tcp(subnet + ".3", p.single)));
        assertEquals("host-db", Namespaces.in(nsA, () -> tcp(subnet + ".3", p.single)));
        assertEquals("host-db", Namespaces.in(nsA, () -> udp(subnet + ".3", p.single)));
    }

    /** A TCP connection held open through a mapping: every round trip must come back whole. */
    private static final class Held implements AutoCloseable {
        private final Socket socket;
        final String name;

        /** Connects on the calling thread (so inside a namespace when called there) and reads the name. */
        Held(String host, int port) throws IOException {
            socket = new Socket();
            socket.connect(new InetSocketAddress(host, port), 5000);
            socket.setSoTimeout(10_000);
            StringBuilder n = new StringBuilder();
            InputStream in = socket.getInputStream();
            for (int c = in.read(); c != '\n'; c = in.read()) {
                if (c < 0) {
                    throw new IOException("closed before the name line");
                }
                n.append((char) c);
            }
            name = n.toString();
        }

        void roundTrip() throws IOException {
            byte[] data = new byte[64 * 1024];
            ThreadLocalRandom.current().nextBytes(data);
            socket.getOutputStream().write(data);
            assertArrayEquals(data, socket.getInputStream().readNBytes(data.length), name + ": echo differs");
        }

        @Override
        public void close() throws IOException {
            socket.close();
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.baton.testkit.Net#handoffTransports")
    void host_ports_reach_containers_through_a_reload_and_an_upgrade(String transport) throws Exception {
        Ports p = new Ports(Net.consecutiveFreePorts(1), Net.consecutiveFreePorts(4), Net.consecutiveFreePorts(1), Net.consecutiveFreePorts(1));
        String pathB = Namespaces.path(nsB).toString();
        // The unroutable namespace really is: nothing but loopback, no route.
        assertEquals("", Namespaces.ip("-n", nsC, "-4", "route", "show").trim());
        try (BatonProcess baton = new BatonProcess(BatonProcess.distribution().resolve("bin/baton"), dir,
                config(transport, p, false))) {
            checkAll(p);
            InetSocketAddress hiddenUdp = new InetSocketAddress("127.0.0.1", p.hidden);
            try (Held web = new Held("127.0.0.1", p.single);
                 Held hidden = new Held("127.0.0.1", p.hidden);
                 Held inside = Namespaces.in(nsB, () -> new Held("127.0.0.1", p.single));
                 DatagramSocket flow = new DatagramSocket(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0))) {
                assertEquals("a-single", web.name);
                assertEquals("c-hidden", hidden.name);
                assertEquals("host-db", inside.name);
                List<Held> held = List.of(web, hidden, inside);
                for (Held h : held) {
                    h.roundTrip();
                }
                assertEquals("c-hidden", NamedBackend.udpName(flow, hiddenUdp));

                // SIGHUP: a proxy is added; every mapping, in namespaces too, stays as it was.
                long pid = baton.pid();
                Files.writeString(baton.config, config(transport, p, true));
                BatonProcess.signal(pid, "HUP");
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
                String extra = null;
                while (extra == null) {
                    try {
                        extra = tcp("127.0.0.1", p.extra);
                    } catch (IOException e) {
                        assertTrue(System.nanoTime() < deadline, "reload did not add the proxy\n" + baton.logText());
                        Thread.sleep(100);
                    }
                }
                assertEquals("c-hidden", extra);
                assertEquals(pid, baton.pid());
                assertFalse(baton.logText().contains("no longer configured"),
                        "a reload re-created a listener\n" + baton.logText());
                checkAll(p);
                for (Held h : held) {
                    h.roundTrip();
                }
                assertEquals("c-hidden", NamedBackend.udpName(flow, hiddenUdp));

                // Upgrade: the successor takes every socket, in namespaces too, and the open
                // connections and the flow whose upstream sockets live in namespaces.
                BatonProcess.Result r = baton.cli("upgrade");
                assertEquals(0, r.code(), r.output() + "\n" + baton.logText());
                // The predecessor answers once it has handed everything over; the successor may
                // write the pid file a moment later.
                long pidDeadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                while (baton.pid() == pid && System.nanoTime() < pidDeadline) {
                    Thread.sleep(20);
                }
                assertNotEquals(pid, baton.pid(), "pid file names the successor");
                assertTrue(BatonProcess.awaitExit(pid, 10_000) >= 0, "predecessor still running");
                String log = baton.logText();
                assertTrue(log.contains("proxy db: adopted tcp on 0.0.0.0:" + p.single + " in " + pathB), log);
                assertTrue(log.contains("proxy dbu: adopted udp on 0.0.0.0:" + p.single + " in " + pathB), log);
                checkAll(p);
                assertEquals("c-hidden", tcp("127.0.0.1", p.extra));
                for (Held h : held) {
                    h.roundTrip();
                }
                assertEquals("c-hidden", NamedBackend.udpName(flow, hiddenUdp));
                java.util.regex.Matcher m = java.util.regex.Pattern.compile("took over (\\d+) connections and (\\d+) flows")
                        .matcher(baton.logText());
                assertTrue(m.find() && Integer.parseInt(m.group(1)) >= 3 && Integer.parseInt(m.group(2)) >= 1,
                        "the held connections and flow were handed over\n" + baton.logText());
                baton.logText().lines().filter(l -> l.contains("/run/netns/") || l.contains("took over"))
                        .forEach(l -> System.out.println("[" + transport + "] " + l));
            }
        }
    }

    /**
     * PROXY protocol across the bridge, the way a published container port is used: a client in
     * container b reaches the host's bridge address; the backend in container a (reached through
     * upstream-netns, on its loopback) learns that client's real address and the address it dialled.
     */
    @Test
    void proxy_protocol_tells_a_container_backend_the_real_client() throws Exception {
        int port = Net.consecutiveFreePorts(1);
        String a = Namespaces.path(nsA).toString();
        String host = subnet + ".1";
        try (TcpHeaderEcho tcpBackend = Namespaces.in(nsA, TcpHeaderEcho::new);
             UdpHeaderEcho udpBackend = Namespaces.in(nsA, UdpHeaderEcho::new);
             BatonProcess baton = new BatonProcess(BatonProcess.distribution().resolve("bin/baton"), dir,
                     "baton {\n  workers = 2\n  drain-timeout = 1s\n"
                             + "  control-socket = \"" + dir.resolve("ctl.sock") + "\"\n  proxies {\n"
                             + "    pp { listen = \"0.0.0.0:" + port + "\", upstreams = \"127.0.0.1:" + tcpBackend.port()
                             + "\", upstream-netns = \"" + a + "\", proxy-protocol = v2 }\n"
                             + "    ppu { protocol = udp, listen = \"" + host + ":" + port + "\", upstreams = \"127.0.0.1:"
                             + udpBackend.port() + "\", upstream-netns = \"" + a + "\", proxy-protocol = v2 }\n"
                             + "  }\n}\n")) {
            byte[] hello = "hello from container b".getBytes(java.nio.charset.StandardCharsets.UTF_8);
            int tcpClientPort = Namespaces.in(nsB, () -> {
                try (Socket c = new Socket()) {
                    c.connect(new InetSocketAddress(host, port), 5000);
                    c.setSoTimeout(10_000);
                    c.getOutputStream().write(hello);
                    c.shutdownOutput();
                    assertArrayEquals(hello, c.getInputStream().readAllBytes(), "echo through the header");
                    return c.getLocalPort();
                }
            });
            ProxyHeaders.Header h = tcpBackend.next();
            assertEquals(2, h.version());
            assertEquals("PROXY", h.command());
            assertEquals("TCP4", h.protocol());
            assertEquals(new InetSocketAddress(subnet + ".3", tcpClientPort), h.source());
            assertEquals(new InetSocketAddress(host, port), h.destination());

            int udpClientPort = Namespaces.in(nsB, () -> {
                try (DatagramSocket c = new DatagramSocket(new InetSocketAddress(subnet + ".3", 0))) {
                    c.setSoTimeout(10_000);
                    c.send(new java.net.DatagramPacket(hello, hello.length, new InetSocketAddress(host, port)));
                    java.net.DatagramPacket back = new java.net.DatagramPacket(new byte[1024], 1024);
                    c.receive(back);
                    assertArrayEquals(hello, java.util.Arrays.copyOf(back.getData(), back.getLength()));
                    return c.getLocalPort();
                }
            });
            UdpHeaderEcho.Received r = udpBackend.next();
            assertEquals("UDP4", r.header().protocol());
            assertEquals(new InetSocketAddress(subnet + ".3", udpClientPort), r.header().source());
            assertEquals(new InetSocketAddress(host, port), r.header().destination());
            assertArrayEquals(hello, r.payload());
        }
    }

    @Test
    void check_names_file_and_line_of_a_bad_namespace() throws Exception {
        Path f = dir.resolve("bad.conf");
        Files.writeString(f, "baton.proxies.web {\n  listen = \"127.0.0.1:1\"\n  upstreams = \"127.0.0.1:2\"\n"
                + "  upstream-netns = \"/run/netns/" + lab.tag() + "-none\"\n}\n");
        Process p = new ProcessBuilder(BatonProcess.distribution().resolve("bin/baton").toString(), "check", "-c",
                f.toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(1, p.exitValue(), out);
        assertTrue(out.contains(f + ":4: baton.proxies.web.upstream-netns: /run/netns/" + lab.tag()
                + "-none: no such file"), out);
    }
}
