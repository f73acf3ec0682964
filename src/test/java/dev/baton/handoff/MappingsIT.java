package dev.baton.handoff;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * `baton map add|rm|ls` against the real launcher: mappings relay TCP and UDP, single ports and
 * ranges; refused requests change nothing; a steady load on the other proxies sees no failure;
 * the mappings survive a reload, an upgrade and a restart.
 */
@Timeout(value = 10, unit = TimeUnit.MINUTES)
class MappingsIT {
    @TempDir
    Path dir;

    @Test
    void mappings_come_and_go_at_runtime_and_survive_reload_upgrade_and_restart() throws Exception {
        try (Loads.TcpEcho echo = new Loads.TcpEcho(); Loads.TcpEcho echo2 = new Loads.TcpEcho();
             Loads.UdpEcho udpEcho = new Loads.UdpEcho()) {
            int webPort = UpgradeIT.freePort();
            int gamePort = UpgradeIT.freePort();
            Path state = dir.resolve("state");
            Path mappings = state.resolve("mappings.conf");
            String config = "baton {\n"
                    + "  workers = 2\n"
                    + "  drain-timeout = 2s\n"
                    + "  upgrade-timeout = 30s\n"
                    + "  control-socket = \"" + dir.resolve("ctl.sock") + "\"\n"
                    + "  state-dir = \"" + state + "\"\n"
                    + "  proxies {\n"
                    + "    web { listen = \"127.0.0.1:" + webPort + "\", upstreams = \"127.0.0.1:" + echo.port() + "\" }\n"
                    + "    game { protocol = udp, listen = \"127.0.0.1:" + gamePort + "\", upstreams = \"127.0.0.1:"
                    + udpEcho.port() + "\" }\n"
                    + "  }\n"
                    + "}\n";
            String up = "127.0.0.1:" + echo.port();
            String twoUps = up + ",127.0.0.1:" + echo2.port();
            String udpUp = "127.0.0.1:" + udpEcho.port();
            int t1 = UpgradeIT.freePort();
            int u1 = freeUdpPort();
            int tr = freeRange(3);
            int ur = freeRange(3);
            String lsBefore;
            try (BatonProcess baton = new BatonProcess(BatonProcess.distribution().resolve("bin/baton"), dir, config)) {
                Loads.ShortConnections load = new Loads.ShortConnections(webPort, 2);
                Loads.UdpFlows flows = new Loads.UdpFlows(gamePort, 5, 500);
                Thread.sleep(500);

                // Add: TCP and UDP, single ports and ranges.
                ok(baton, "map", "add", "tcp", "127.0.0.1:" + t1, up, "--name", "t1");
                assertTrue(echoes(t1), "t1 relays");
                BatonProcess.Result r = ok(baton, "map", "add", "udp", "127.0.0.1:" + u1, udpUp);
                assertTrue(r.output().contains("added udp-127.0.0.1-" + u1), r.output());
                assertEquals("u1", udpRoundTrip(u1, "u1"));
                ok(baton, "map", "add", "tcp", "127.0.0.1:" + tr + "-" + (tr + 2), twoUps, "--name", "tr");
                ok(baton, "map", "add", "udp", "127.0.0.1:" + ur + "-" + (ur + 2), udpUp, "--name", "ur");
                for (int i = 0; i < 3; i++) {
                    assertTrue(echoes(tr + i), "tr port " + i);
                    assertEquals("ur" + i, udpRoundTrip(ur + i, "ur" + i));
                }

                // A 1,000-port range: how long the daemon takes to check, open and save it (and, for
                // comparison, a command that does nothing: the client JVM's own start).
                long start = System.nanoTime();
                ok(baton, "status");
                long statusMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
                int big = freeRange(1000);
                start = System.nanoTime();
                ok(baton, "map", "add", "tcp", "127.0.0.1:" + big + "-" + (big + 999), up, "--name", "big");
                long cliMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
                assertTrue(echoes(big + 500), "a port in the middle of the range relays");
                String bigLs = ok(baton, "map", "ls").output();
                assertEquals(1 + 2 + 1 + 1 + 3 + 3 + 1000, bigLs.strip().lines().count(), "every row arrives");
                assertRow(bigLs, "big:" + (big + 999), "tcp", "127.0.0.1:" + (big + 999), up, "runtime");
                Matcher m = Pattern.compile("map add big: .* in (\\d+) ms").matcher(baton.logText());
                assertTrue(m.find(), baton.logText());
                start = System.nanoTime();
                ok(baton, "map", "rm", "big");
                long rmMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
                Matcher rm = Pattern.compile("map rm big: .* in (\\d+) ms").matcher(baton.logText());
                assertTrue(rm.find(), baton.logText());
                System.out.printf("[MappingsIT] 1000-port TCP range (2 workers, 2000 sockets): map add %s ms in the "
                        + "daemon, %d ms for the command; map rm %s ms in the daemon, %d ms for the command; "
                        + "`baton status` %d ms for the command%n", m.group(1), cliMs, rm.group(1), rmMs, statusMs);
                assertTrue(stopsEchoing(big + 500), "the removed range no longer listens");

                // ls: every proxy with its origin.
                String ls = ok(baton, "map", "ls").output();
                assertRow(ls, "web", "tcp", "127.0.0.1:" + webPort, up, "config");
                assertRow(ls, "game", "udp", "127.0.0.1:" + gamePort, udpUp, "config");
                assertRow(ls, "t1", "tcp", "127.0.0.1:" + t1, up, "runtime");
                assertRow(ls, "udp-127.0.0.1-" + u1, "udp", "127.0.0.1:" + u1, udpUp, "runtime");
                assertRow(ls, "tr:" + (tr + 1), "tcp", "127.0.0.1:" + (tr + 1), twoUps, "runtime");
                assertRow(ls, "ur:" + (ur + 2), "udp", "127.0.0.1:" + (ur + 2), udpUp, "runtime");
                assertEquals(1 + 2 + 1 + 1 + 3 + 3, ls.strip().lines().count(), ls);

                // Refused requests: exit 1, one line saying why, nothing changed.
                String saved = Files.readString(mappings);
                int free = UpgradeIT.freePort();
                refused(baton, "a runtime mapping named 't1' exists already",
                        "map", "add", "tcp", "127.0.0.1:" + free, up, "--name", "t1");
                refused(baton, "tcp 127.0.0.1:" + webPort + " is already a listen address of proxy 'web'",
                        "map", "add", "tcp", "127.0.0.1:" + webPort, up);
                try (ServerSocket taken = new ServerSocket()) {
                    taken.bind(new InetSocketAddress("127.0.0.1", free));
                    refused(baton, "cannot listen on tcp 127.0.0.1:" + free + ": address already in use",
                            "map", "add", "tcp", "127.0.0.1:" + free, up);
                }
                int range = freeRange(10);
                try (ServerSocket taken = new ServerSocket()) {
                    taken.bind(new InetSocketAddress("127.0.0.1", range + 7));
                    refused(baton, "cannot listen on tcp 127.0.0.1:" + (range + 7) + ": address already in use",
                            "map", "add", "tcp", "127.0.0.1:" + range + "-" + (range + 9), up, "--name", "r10");
                }
                for (int p = range; p < range + 10; p++) {
                    assertFalse(echoes(p), "port " + p + " of the refused range is not bound");
                }
                refused(baton, "'127.0.0.1:99999': port 99999 is out of range 1-65535",
                        "map", "add", "tcp", "127.0.0.1:99999", up);
                assertEquals(saved, Files.readString(mappings), "refusals leave the mappings file as it was");
                assertEquals(ls, ok(baton, "map", "ls").output(), "refusals leave the daemon as it was");

                // Remove.
                ok(baton, "map", "rm", "t1");
                assertTrue(stopsEchoing(t1), "t1 no longer listens");
                lsBefore = ok(baton, "map", "ls").output();

                // SIGHUP re-reads the configuration and the mappings: they stay.
                long pid = baton.pid();
                int reloads = count(baton.logText(), "reloaded ");
                BatonProcess.signal(pid, "HUP");
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
                while (count(baton.logText(), "reloaded ") == reloads && System.nanoTime() < deadline) {
                    Thread.sleep(50);
                }
                assertEquals(reloads + 1, count(baton.logText(), "reloaded "), baton.logText());
                assertMappingsServe(tr, ur, u1);
                assertEquals(lsBefore, ok(baton, "map", "ls").output());

                // An upgrade's successor reads them too, and takes new ones.
                ok(baton, "upgrade");
                assertNotEquals(pid, baton.pid(), "the successor serves");
                assertTrue(BatonProcess.awaitExit(pid, 10_000) >= 0, "the predecessor exited");
                assertMappingsServe(tr, ur, u1);
                assertEquals(lsBefore, ok(baton, "map", "ls").output());
                int t2 = UpgradeIT.freePort();
                ok(baton, "map", "add", "tcp", "127.0.0.1:" + t2, up, "--name", "t2");
                assertTrue(echoes(t2));
                lsBefore = ok(baton, "map", "ls").output();

                Thread.sleep(500);
                load.close();
                flows.close();
                assertEquals(0, load.failed.get(), "failed connections on 'web' while mappings came and went: "
                        + load.errors + "\n" + baton.logText());
                assertTrue(load.ok.get() > 50, "connections made: " + load.ok.get());
                assertEquals(0, flows.lost(), flows.lost() + " of " + flows.sent.get() + " datagrams lost on 'game'");
                System.out.printf("[MappingsIT] steady load on the other proxies: %d connections, 0 failed; %d datagrams,"
                        + " 0 lost%n", load.ok.get(), flows.sent.get());

                // Restart: stop, then start again with the same state-dir.
                assertTrue(baton.logText().contains("map add t2"), baton.logText());
                BatonProcess.signal(baton.pid(), "TERM");
                assertTrue(BatonProcess.awaitExit(baton.pid(), 20_000) >= 0, "stopped");
                int t2port = t2;
                try (BatonProcess again = new BatonProcess(BatonProcess.distribution().resolve("bin/baton"), dir,
                        config)) {
                    assertMappingsServe(tr, ur, u1);
                    assertTrue(echoes(t2port), "t2 after the restart");
                    assertEquals(lsBefore, ok(again, "map", "ls").output());
                    Path elsewhere = dir.resolve("elsewhere.conf");
                    Files.writeString(elsewhere, "baton.control-socket = \"" + dir.resolve("nobody.sock") + "\"\n");
                    Process p = new ProcessBuilder(BatonProcess.distribution().resolve("bin/baton").toString(), "map",
                            "ls", "-c", elsewhere.toString()).redirectErrorStream(true).start();
                    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                    assertTrue(p.waitFor(60, TimeUnit.SECONDS));
                    assertEquals(2, p.exitValue(), out);
                    assertTrue(out.contains("cannot reach the daemon"), out);
                }
            }
        }
    }

    private static BatonProcess.Result ok(BatonProcess baton, String... args) throws Exception {
        BatonProcess.Result r = baton.cli(args);
        assertEquals(0, r.code(), String.join(" ", args) + ": " + r.output() + "\n" + baton.logText());
        return r;
    }

    private static void refused(BatonProcess baton, String reason, String... args) throws Exception {
        BatonProcess.Result r = baton.cli(args);
        assertEquals(1, r.code(), String.join(" ", args) + ": " + r.output());
        assertTrue(r.output().startsWith(reason), String.join(" ", args) + ": " + r.output());
        assertEquals(1, r.output().strip().lines().count(), "one line: " + r.output());
    }

    private static void assertRow(String ls, String... cells) {
        String want = String.join(" ", cells);
        assertTrue(ls.lines().map(l -> l.trim().replaceAll("\\s+", " ")).anyMatch(want::equals),
                "no row '" + want + "' in\n" + ls);
    }

    private static void assertMappingsServe(int tr, int ur, int u1) throws Exception {
        for (int i = 0; i < 3; i++) {
            assertTrue(echoes(tr + i), "tr port " + i);
            assertEquals("ur" + i, udpRoundTrip(ur + i, "ur" + i));
        }
        assertEquals("u1", udpRoundTrip(u1, "u1"));
    }

    private static int count(String text, String what) {
        int n = 0;
        for (int i = text.indexOf(what); i >= 0; i = text.indexOf(what, i + 1)) {
            n++;
        }
        return n;
    }

    private static int freeUdpPort() throws IOException {
        try (DatagramSocket s = new DatagramSocket(new InetSocketAddress("127.0.0.1", 0))) {
            return s.getLocalPort();
        }
    }

    /** {@code n} consecutive ports free for TCP and UDP on 127.0.0.1 a moment ago. */
    private static int freeRange(int n) throws IOException {
        for (int attempt = 0; attempt < 200; attempt++) {
            // Below the ephemeral ports (32768+), which the clients' own connections keep taking.
            int base = ThreadLocalRandom.current().nextInt(10000, 32000 - n);
            List<AutoCloseable> held = new ArrayList<>();
            try {
                for (int p = base; p < base + n; p++) {
                    ServerSocket s = new ServerSocket();
                    held.add(s);
                    s.bind(new InetSocketAddress("127.0.0.1", p));
                    held.add(new DatagramSocket(new InetSocketAddress("127.0.0.1", p)));
                }
                return base;
            } catch (IOException busy) {
                // another base
            } finally {
                for (AutoCloseable c : held) {
                    try {
                        c.close();
                    } catch (Exception ignored) {
                        // closing a probe
                    }
                }
            }
        }
        throw new IOException("no run of " + n + " free ports");
    }

    private static boolean stopsEchoing(int port) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (echoes(port)) {
            if (System.nanoTime() > deadline) {
                return false;
            }
            Thread.sleep(20);
        }
        return true;
    }

    private static boolean echoes(int port) {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress("127.0.0.1", port), 3000);
            s.setSoTimeout(3000);
            s.getOutputStream().write("ping".getBytes(StandardCharsets.US_ASCII));
            byte[] b = new byte[4];
            Loads.readFully(s.getInputStream(), b);
            return new String(b, StandardCharsets.US_ASCII).equals("ping");
        } catch (IOException e) {
            return false;
        }
    }

    private static String udpRoundTrip(int port, String text) throws IOException {
        try (DatagramSocket c = new DatagramSocket(new InetSocketAddress("127.0.0.1", 0))) {
            c.setSoTimeout(5000);
            byte[] b = text.getBytes(StandardCharsets.US_ASCII);
            c.send(new DatagramPacket(b, b.length, new InetSocketAddress("127.0.0.1", port)));
            DatagramPacket r = new DatagramPacket(new byte[100], 100);
            c.receive(r);
            return new String(r.getData(), 0, r.getLength(), StandardCharsets.US_ASCII);
        }
    }
}
