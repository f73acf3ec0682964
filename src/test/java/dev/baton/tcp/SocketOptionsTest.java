package dev.baton.tcp;

import dev.baton.config.Protocol;
import dev.baton.daemon.Daemon;
import dev.baton.socket.Listener;
import dev.baton.socket.ListenerKey;
import dev.baton.socket.Transport;
import dev.baton.testkit.EchoServer;
import dev.baton.testkit.Net;
import dev.baton.testkit.Proxies;
import io.netty.channel.AdaptiveRecvByteBufAllocator;
import io.netty.channel.Channel;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.channel.MaxMessagesRecvByteBufAllocator;
import io.netty.channel.RecvByteBufAllocator;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Options read back from the live sockets, and per-worker SO_REUSEPORT listeners. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class SocketOptionsTest {
    @TempDir
    Path dir;

    static java.util.stream.Stream<Transport> transports() {
        return Net.transports();
    }

    private static boolean hasSs() {
        return Files.isExecutable(Path.of("/usr/bin/ss")) || Files.isExecutable(Path.of("/bin/ss"));
    }

    private static String run(String... cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(10, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), out);
        return out;
    }

    @ParameterizedTest
    @MethodSource("transports")
    void keepaliveAndNodelayOnBothLegs(Transport t) throws Exception {
        try (EchoServer up = EchoServer.echo()) {
            int port = Net.freePort();
            Daemon d = Proxies.start(dir, t, 1, "p { listen = \"127.0.0.1:" + port + "\", upstreams = \"127.0.0.1:"
                    + up.port() + "\", tcp { nodelay = true, keepalive { enabled = true, idle = 17s, interval = 3s, count = 4 } } }\n"
                    + "q { listen = \"127.0.0.1:" + Net.freePort() + "\", upstreams = \"127.0.0.1:" + up.port()
                    + "\", tcp { nodelay = false, keepalive.enabled = false } }\n");
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress(Net.LOOPBACK, port), 5000);
                s.setSoTimeout(10_000);
                s.getOutputStream().write('x');
                assertEquals('x', s.getInputStream().read(), "relay is up (both legs connected)");
                List<Map<String, Object>> seen = onWorker0(d, c -> {
                    List<Map<String, Object>> r = new ArrayList<>();
                    for (Channel ch : List.of(c.client(), c.upstream())) {
                        Map<String, Object> m = new java.util.HashMap<>();
                        m.put("keepalive", ch.config().getOption(ChannelOption.SO_KEEPALIVE));
                        m.put("nodelay", ch.config().getOption(ChannelOption.TCP_NODELAY));
                        if (t.options().keepIdle() != null) {
                            m.put("idle", ch.config().getOption(t.options().keepIdle()));
                            m.put("intvl", ch.config().getOption(t.options().keepInterval()));
                            m.put("cnt", ch.config().getOption(t.options().keepCount()));
                        }
                        r.add(m);
                    }
                    return r;
                });
                assertEquals(2, seen.size(), "client and upstream leg of the one connection");
                for (Map<String, Object> m : seen) {
                    assertEquals(true, m.get("keepalive"), m.toString());
                    assertEquals(true, m.get("nodelay"), m.toString());
                    if (t.options().keepIdle() != null) {
                        assertEquals(17, m.get("idle"), m.toString());
                        assertEquals(3, m.get("intvl"), m.toString());
                        assertEquals(4, m.get("cnt"), m.toString());
                    }
                }
                if (hasSs()) {
                    // Both legs of the proxied connection run a keepalive timer: the client-facing
                    // socket (local port = listen port) and the upstream one (peer = upstream port).
                    String out = run("ss", "-tnoiH", "state", "established");
                    int withTimer = 0;
                    for (String l : out.split("\n")) {
                        String[] f = l.trim().split("\\s+");
                        if (f.length < 4) {
                            continue;
                        }
                        // -H columns: Recv-Q Send-Q Local Peer [timer...]; IPv4 may print as [::ffff:127.0.0.1]
                        boolean clientLeg = f[2].endsWith(":" + port);
                        boolean upstreamLeg = f[3].endsWith(":" + up.port());
                        if (clientLeg || upstreamLeg) {
                            assertTrue(l.contains("timer:(keepalive,"), "keepalive timer on " + l);
                            withTimer++;
                        }
                    }
                    assertEquals(2, withTimer, out);
                }
            } finally {
                d.stop();
            }
        }
    }

    /**
     * Where the listening socket carries keepalive (epoll, io_uring), connections inherit it: every
     * connection has the configured settings, not only the first, and a reload that changes them
     * reaches the connections accepted after it (including "off").
     */
    @ParameterizedTest
    @MethodSource("transports")
    void keepaliveOnEveryConnectionAndAfterReloads(Transport t) throws Exception {
        try (EchoServer up = EchoServer.echo()) {
            int port = Net.freePort();
            String head = "baton {\n  transport = " + t.label() + "\n  workers = 1\n  drain-timeout = 0s\n  proxies {\n"
                    + "p { listen = \"127.0.0.1:" + port + "\", upstreams = \"127.0.0.1:" + up.port() + "\", tcp.keepalive ";
            Daemon d = Proxies.start(dir, t, 1, "p { listen = \"127.0.0.1:" + port + "\", upstreams = \"127.0.0.1:"
                    + up.port() + "\", tcp.keepalive { enabled = true, idle = 17s, interval = 3s, count = 4 } }\n");
            try {
                assertClientKeepalive(t, d, port, true, 17, 3, 4);
                Path f = dir.resolve("reload.conf");
                Files.writeString(f, head + "{ enabled = true, idle = 23s, interval = 5s, count = 2 } }\n  }\n}\n");
                d.reload(dev.baton.config.ConfigLoader.load(f));
                assertClientKeepalive(t, d, port, true, 23, 5, 2);
                Files.writeString(f, head + "{ enabled = false } }\n  }\n}\n");
                d.reload(dev.baton.config.ConfigLoader.load(f));
                assertClientKeepalive(t, d, port, false, 0, 0, 0);
            } finally {
                d.stop();
            }
        }
    }

    /**
     * What {@code each} lists for every connection on worker 0, read on that worker, one after the
     * other. A connection still on raw sockets (epoll) moves onto its channels first, as an upgrade
     * moves it: what they show is what its sockets were given.
     */
    private static <T> List<T> onWorker0(Daemon d, java.util.function.Function<TcpConnection, List<T>> each)
            throws Exception {
        EventLoop loop = d.workers().loop(0);
        return loop.submit(() -> {
            List<T> r = new ArrayList<>();
            for (TcpConnection c : List.copyOf(d.connections().on(loop))) {
                c.leaveRawPhase();
                r.addAll(each.apply(c));
            }
            return r;
        }).get(10, TimeUnit.SECONDS);
    }

    /** Three connections one after the other: each one's client leg has these settings. */
    private static void assertClientKeepalive(Transport t, Daemon d, int port, boolean on, int idle, int intvl,
                                              int cnt) throws Exception {
        for (int i = 0; i < 3; i++) {
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress(Net.LOOPBACK, port), 5000);
                s.setSoTimeout(10_000);
                s.getOutputStream().write('x');
                assertEquals('x', s.getInputStream().read(), "relay is up");
                List<Object> seen = onWorker0(d, c -> {
                    Channel ch = c.client();
                    List<Object> r = new ArrayList<>();
                    r.add(ch.config().getOption(ChannelOption.SO_KEEPALIVE));
                    if (on && t.options().keepIdle() != null) {
                        r.add(ch.config().getOption(t.options().keepIdle()));
                        r.add(ch.config().getOption(t.options().keepInterval()));
                        r.add(ch.config().getOption(t.options().keepCount()));
                    }
                    return r;
                });
                List<Object> expected = on && t.options().keepIdle() != null ? List.of(true, idle, intvl, cnt)
                        : List.of(on);
                assertEquals(expected, seen, "connection " + (i + 1) + " after the last change");
            }
            // the next connection must be the only one: wait for this one to leave the books
            long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (d.connections().count() > 0 && System.nanoTime() < end) {
                Thread.sleep(5);
            }
        }
    }

    /**
     * Both legs read with the one shared allocator, and it has the settings Netty would have given
     * each socket on its own (so sharing it changes nothing but memory).
     */
    @ParameterizedTest
    @MethodSource("transports")
    void bothLegsShareReadSizingEqualToNettysOwn(Transport t) throws Exception {
        Channel fresh = t.newSocketChannel();
        try {
            RecvByteBufAllocator own = fresh.config().getRecvByteBufAllocator();
            assertEquals(AdaptiveRecvByteBufAllocator.class, own.getClass());
            assertEquals(((MaxMessagesRecvByteBufAllocator) own).maxMessagesPerRead(),
                    ((MaxMessagesRecvByteBufAllocator) TcpProxy.READS).maxMessagesPerRead());
        } finally {
            fresh.unsafe().closeForcibly();
        }
        try (EchoServer up = EchoServer.echo()) {
            int port = Net.freePort();
            Daemon d = Proxies.start(dir, t, 1, "p { listen = \"127.0.0.1:" + port + "\", upstreams = \"127.0.0.1:"
                    + up.port() + "\" }\n");
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress(Net.LOOPBACK, port), 5000);
                s.setSoTimeout(10_000);
                s.getOutputStream().write('x');
                assertEquals('x', s.getInputStream().read(), "relay is up (both legs connected)");
                List<RecvByteBufAllocator> seen = onWorker0(d, c -> List.of(
                        c.client().config().getRecvByteBufAllocator(), c.upstream().config().getRecvByteBufAllocator()));
                assertEquals(List.of(TcpProxy.READS, TcpProxy.READS), seen);
            } finally {
                d.stop();
            }
        }
    }

    @ParameterizedTest
    @MethodSource("transports")
    void oneReusePortSocketPerWorker(Transport t) throws Exception {
        try (EchoServer up = EchoServer.echo()) {
            int port = Net.freePort();
            Daemon d = Proxies.start(dir, t, 3, "p { listen = \"127.0.0.1:" + port + "\", upstreams = \"127.0.0.1:"
                    + up.port() + "\" }\n");
            try {
                Listener l = d.registry().get(new ListenerKey(Protocol.TCP, new InetSocketAddress("127.0.0.1", port)));
                int expected = t.supportsReusePortAndHandoff() ? 3 : 1;
                assertEquals(expected, l.sockets().size());
                if (hasSs()) {
                    String out = run("ss", "-ltnH", "sport", "= :" + port);
                    long n = out.lines().filter(s -> s.startsWith("LISTEN")).count();
                    assertEquals(expected, n, out);
                }
                // Connections through any of them are relayed.
                for (int i = 0; i < 6; i++) {
                    try (Socket s = new Socket()) {
                        s.connect(new InetSocketAddress(Net.LOOPBACK, port), 5000);
                        s.setSoTimeout(10_000);
                        s.getOutputStream().write(("m" + i).getBytes(StandardCharsets.US_ASCII));
                        s.shutdownOutput();
                        assertEquals("m" + i, new String(s.getInputStream().readAllBytes(), StandardCharsets.US_ASCII));
                    }
                }
            } finally {
                d.stop();
            }
        }
    }
}
