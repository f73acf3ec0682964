package dev.baton.handoff;

import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Zero-downtime upgrades and reloads of the real launcher, as separate processes, under load.
 * Every count here is exact: a failed connection, a broken stream or a lost datagram fails the test.
 */
class UpgradeIT {
    static final int UPGRADES = Integer.getInteger("baton.it.upgrades", 20);

    @TempDir
    Path dir;

    static int freePort() throws Exception {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    private String config(String transport, int tcpPort, int tcpUpstream, int udpPort, int udpUpstream, String extra) {
        return "baton {\n"
                + "  transport = " + transport + "\n"
                + "  workers = 2\n"
                + "  drain-timeout = 5s\n"
                + "  upgrade-timeout = 20s\n"
                + "  control-socket = \"" + dir.resolve("ctl.sock") + "\"\n"
                + "  proxies {\n"
                + "    web { listen = \"127.0.0.1:" + tcpPort + "\", upstreams = [\"127.0.0.1:" + tcpUpstream + "\"] }\n"
                + "    game { protocol = udp, listen = \"127.0.0.1:" + udpPort + "\", upstreams = \"127.0.0.1:"
                + udpUpstream + "\" }\n"
                + extra
                + "  }\n"
                + "}\n";
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.baton.testkit.Net#handoffTransports")
    void storm_of_upgrades_loses_nothing(String transport) throws Exception {
        try (Loads.TcpEcho echo = new Loads.TcpEcho(); Loads.UdpEcho udpEcho = new Loads.UdpEcho()) {
            int tcpPort = freePort();
            int udpPort = freePort();
            try (BatonProcess baton = new BatonProcess(BatonProcess.distribution().resolve("bin/baton"), dir,
                    config(transport, tcpPort, echo.port(), udpPort, udpEcho.port(), ""))) {
                Loads.ShortConnections shortConns = new Loads.ShortConnections(tcpPort, 2);
                Loads.Streams streams = new Loads.Streams(tcpPort, 50);
                Loads.UdpFlows flows = new Loads.UdpFlows(udpPort, 20, 2000);
                Thread.sleep(1000);
                long maxExitMs = 0;
                // Kernel drops at the UDP listen address, before the first upgrade and in each one
                // (for a failure message: do they come with particular upgrades or all along?)
                List<Long> dropsPerUpgrade = new ArrayList<>();
                long dropsSoFar = udpDropsAt(udpPort);
                dropsPerUpgrade.add(dropsSoFar);
                for (int i = 0; i < UPGRADES; i++) {
                    long before = baton.pid();
                    BatonProcess.Result r = baton.cli("upgrade");
                    assertEquals(0, r.code(), "upgrade " + i + ": " + r.output() + "\n" + baton.logText());
                    long after = baton.pid();
                    assertNotEquals(before, after, "pid file names the successor");
                    long exitMs = BatonProcess.awaitExit(before, 5000);
                    assertTrue(exitMs >= 0, "predecessor " + before + " still running 5 s after handing over");
                    maxExitMs = Math.max(maxExitMs, exitMs);
                    assertTrue(baton.processCount() <= 2, "never more than two processes");
                    Thread.sleep(300);
                    long d = udpDropsAt(udpPort);
                    dropsPerUpgrade.add(d - dropsSoFar);
                    dropsSoFar = d;
                }
                Thread.sleep(1000);
                String drops = udpDrops() + "\ndrops at the udp listen address before the first upgrade, then in each: "
                        + dropsPerUpgrade + "\nupstream received " + udpEcho.received.get() + "\n"
                        + baton.cli("status").output();
                shortConns.close();
                streams.close();
                flows.close();
                String log = drops + "\n" + baton.logText();
                assertEquals(0, shortConns.failed.get(), "failed short connections: " + shortConns.errors + "\n" + log);
                assertTrue(shortConns.ok.get() > 100, "short connections made: " + shortConns.ok.get());
                assertEquals(0, streams.broken.get(), "broken streams: " + streams.errors + "\n" + log);
                assertTrue(streams.bytes.get() > 1_000_000, "stream bytes: " + streams.bytes.get());
                assertEquals(0, flows.lost(), flows.lost() + " lost datagrams of " + flows.sent.get() + "\n" + log);
                for (Map.Entry<Integer, Set<java.net.SocketAddress>> e : udpEcho.sources.entrySet()) {
                    assertEquals(1, e.getValue().size(), "flow " + e.getKey() + " re-mapped: " + e.getValue());
                }
                assertEquals(20, udpEcho.sources.size(), "flows seen by the upstream");
                assertTrue(maxExitMs <= 2000, "a predecessor took " + maxExitMs + " ms to exit after handing over");
                System.out.printf("[%s] %d upgrades: %d short connections, 0 failed; 50 streams, %d bytes, 0 broken; "
                                + "%d datagrams, 0 lost, 0 re-mapped; slowest predecessor exit %d ms%n",
                        transport, UPGRADES, shortConns.ok.get(), streams.bytes.get(), flows.sent.get(), maxExitMs);
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.baton.testkit.Net#handoffTransports")
    void broken_successor_leaves_the_service_as_it_was(String transport) throws Exception {
        // Run from a copy of the distribution whose launcher the test can break, as a bad package would.
        Path home = dir.resolve("home");
        Files.createDirectories(home.resolve("bin"));
        Path launcher = home.resolve("bin/baton");
        Path good = BatonProcess.distribution().resolve("bin/baton");
        Files.copy(good, launcher);
        Files.createSymbolicLink(home.resolve("lib"), BatonProcess.distribution().resolve("lib"));
        Files.createSymbolicLink(home.resolve("conf"), BatonProcess.distribution().resolve("conf"));
        try (Loads.TcpEcho echo = new Loads.TcpEcho(); Loads.UdpEcho udpEcho = new Loads.UdpEcho()) {
            int tcpPort = freePort();
            int udpPort = freePort();
            String valid = config(transport, tcpPort, echo.port(), udpPort, udpEcho.port(), "");
            try (BatonProcess baton = new BatonProcess(launcher, dir, valid)) {
                long pid = baton.pid();
                Loads.ShortConnections load = new Loads.ShortConnections(tcpPort, 2);
                Thread.sleep(500);

                // 1. The new configuration is invalid: the successor refuses, naming file and line.
                Files.writeString(baton.config, valid.replace("workers = 2", "workers = 2\n  wrokers = 3"));
                BatonProcess.Result r = baton.cli("upgrade");
                assertEquals(1, r.code(), r.output());
                assertTrue(r.output().contains("baton.conf:4: baton.wrokers: unknown key (did you mean 'workers'?)"),
                        r.output());
                assertEquals(pid, baton.pid());

                // 2. The successor cannot open a new listener (port taken).
                try (ServerSocket taken = new ServerSocket(0)) {
                    Files.writeString(baton.config, config(transport, tcpPort, echo.port(), udpPort, udpEcho.port(),
                            "    extra { listen = \"127.0.0.1:" + taken.getLocalPort() + "\", upstreams = \"127.0.0.1:1\" }\n"));
                    r = baton.cli("upgrade");
                    assertEquals(1, r.code(), r.output());
                    assertTrue(r.output().contains("address already in use"), r.output());
                }
                Files.writeString(baton.config, valid);

                // 3. The upgraded package is broken: the successor exits before it even starts.
                Files.writeString(launcher, "#!/bin/sh\necho broken package >&2\nexit 3\n");
                r = baton.cli("upgrade");
                assertEquals(1, r.code(), r.output());
                assertTrue(r.output().contains("exit status 3"), r.output());

                // 4. The successor hangs: killed after upgrade-timeout, predecessor serves on.
                Files.writeString(baton.config, valid.replace("upgrade-timeout = 20s", "upgrade-timeout = 1s"));
                Files.writeString(launcher, "#!/bin/sh\nexec sleep 30\n");
                r = baton.cli("upgrade");
                assertEquals(1, r.code(), r.output());
                assertTrue(baton.logText().contains("not ready within"), baton.logText());
                Files.writeString(baton.config, valid);

                assertEquals(pid, baton.pid());
                assertTrue(BatonProcess.alive(pid));

                // 5. Fixed package: SIGUSR2 upgrades; a second SIGUSR2 meanwhile is logged and ignored.
                Files.copy(good, launcher, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
                Files.setPosixFilePermissions(launcher, PosixFilePermissions.fromString("rwxr-xr-x"));
                BatonProcess.signal(pid, "USR2");
                Thread.sleep(100);
                BatonProcess.signal(pid, "USR2");
                long deadline = System.nanoTime() + 60_000_000_000L;
                while (baton.pid() == pid && System.nanoTime() < deadline) {
                    assertTrue(baton.processCount() <= 2, "never more than two processes");
                    Thread.sleep(20);
                }
                assertNotEquals(pid, baton.pid(), "SIGUSR2 upgraded\n" + baton.logText());
                assertTrue(baton.logText().contains("upgrade already in progress"), baton.logText());
                assertTrue(BatonProcess.awaitExit(pid, 5000) >= 0);
                assertTrue(baton.processCount() <= 1, "one process serves");

                Thread.sleep(500);
                load.close();
                assertEquals(0, load.failed.get(), "failed connections: " + load.errors + "\n" + baton.logText());
                assertTrue(load.ok.get() > 50);
            }
        }
    }

    /**
     * A successor that dies in the state handoff, after its predecessor stopped accepting and
     * reading and told it to go (and again, after it had written the pid file and taken the
     * control socket): the predecessor takes its listeners back (TCP and UDP, every SO_REUSEPORT
     * socket) and serves on under its own pid file and control socket; the next upgrade goes
     * through.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.baton.testkit.Net#handoffTransports")
    void successor_dying_in_the_state_handoff_leaves_the_predecessor_serving(String transport) throws Exception {
        Path fault = dir.resolve("fault");
        try (Loads.TcpEcho echo = new Loads.TcpEcho(); Loads.UdpEcho udpEcho = new Loads.UdpEcho()) {
            int tcpPort = freePort();
            int udpPort = freePort();
            try (BatonProcess baton = new BatonProcess(BatonProcess.distribution().resolve("bin/baton"), dir,
                    config(transport, tcpPort, echo.port(), udpPort, udpEcho.port(), ""),
                    Map.of("BATON_JAVA_OPTS", "-Dbaton.test.fault-file=" + fault))) {
                long pid = baton.pid();
                assertEquals(20, echoing(tcpPort, 20), "TCP clients served before");
                assertEquals(20, udpEchoing(udpPort, 20), "UDP clients served before");

                BatonProcess.Result r;
                for (String point : List.of("start", "announced")) {
                    Files.writeString(fault, point);
                    r = baton.cli("upgrade");
                    assertEquals(1, r.code(), point + ": " + r.output());
                    assertTrue(r.output().contains("state handoff"), point + ": " + r.output());
                    assertTrue(!Files.exists(fault), point + ": the successor got there\n" + baton.logText());
                    assertEquals(pid, baton.pid(), point + ": the pid file names the predecessor\n" + baton.logText());
                    assertTrue(BatonProcess.alive(pid));
                    assertEquals(20, echoing(tcpPort, 20), point + ": TCP clients served after\n" + baton.logText());
                    assertEquals(20, udpEchoing(udpPort, 20), point + ": UDP clients served after\n" + baton.logText());
                    assertTrue(baton.cli("status").output().startsWith("pid " + pid + "\n"),
                            point + ": the control socket reaches the predecessor\n" + baton.logText());
                }

                r = baton.cli("upgrade");
                assertEquals(0, r.code(), r.output() + "\n" + baton.logText());
                assertNotEquals(pid, baton.pid());
                assertEquals(20, echoing(tcpPort, 20), "TCP clients served by the next successor");
                assertEquals(20, udpEchoing(udpPort, 20), "UDP clients served by the next successor");
            }
        }
    }

    /** How many of {@code n} TCP clients (each its own connection) get their bytes back. */
    private static int echoing(int port, int n) {
        int ok = 0;
        for (int i = 0; i < n; i++) {
            ok += echoes(port) ? 1 : 0;
        }
        return ok;
    }

    /** How many of {@code n} UDP clients (each its own socket, so its own flow) get their datagram back. */
    private static int udpEchoing(int port, int n) {
        int ok = 0;
        for (int i = 0; i < n; i++) {
            try (java.net.DatagramSocket s = new java.net.DatagramSocket(new java.net.InetSocketAddress("127.0.0.1", 0))) {
                s.setSoTimeout(3000);
                byte[] b = ("client " + i).getBytes();
                s.send(new java.net.DatagramPacket(b, b.length, new java.net.InetSocketAddress("127.0.0.1", port)));
                java.net.DatagramPacket p = new java.net.DatagramPacket(new byte[64], 64);
                s.receive(p);
                ok += new String(p.getData(), 0, p.getLength()).equals("client " + i) ? 1 : 0;
            } catch (java.io.IOException e) {
                // not served
            }
        }
        return ok;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.baton.testkit.Net#handoffTransports")
    void reload_adds_removes_and_changes_proxies_without_touching_the_others(String transport) throws Exception {
        try (Loads.TcpEcho echo = new Loads.TcpEcho(); Loads.TcpEcho echo2 = new Loads.TcpEcho();
             Loads.UdpEcho udpEcho = new Loads.UdpEcho()) {
            int tcpPort = freePort();
            int udpPort = freePort();
            int removed = freePort();
            int changed = freePort();
            int added = freePort();
            int dead = freePort();
            String before = config(transport, tcpPort, echo.port(), udpPort, udpEcho.port(),
                    "    old { listen = \"127.0.0.1:" + removed + "\", upstreams = \"127.0.0.1:" + echo.port() + "\" }\n"
                            + "    moved { listen = \"127.0.0.1:" + changed + "\", upstreams = \"127.0.0.1:" + dead + "\" }\n");
            String after = config(transport, tcpPort, echo.port(), udpPort, udpEcho.port(),
                    "    moved { listen = \"127.0.0.1:" + changed + "\", upstreams = \"127.0.0.1:" + echo2.port()
                            + "\", tcp { connect-timeout = 2s } }\n"
                            + "    fresh { listen = \"127.0.0.1:" + added + "\", upstreams = \"127.0.0.1:" + echo.port() + "\" }\n");
            try (BatonProcess baton = new BatonProcess(BatonProcess.distribution().resolve("bin/baton"), dir, before)) {
                long pid = baton.pid();
                Loads.ShortConnections load = new Loads.ShortConnections(tcpPort, 4);
                Loads.UdpFlows flows = new Loads.UdpFlows(udpPort, 10, 500);
                Thread.sleep(500);
                assertTrue(echoes(removed));
                assertTrue(!echoes(changed), "upstream of 'moved' is down before the reload");

                // An invalid file is rejected with file:line and changes nothing.
                Files.writeString(baton.config, after.replace("workers = 2", "workers = two"));
                BatonProcess.Result r = baton.cli("reload");
                assertEquals(1, r.code(), r.output());
                assertTrue(r.output().contains("baton.conf:3: baton.workers: must be a number or auto"), r.output());
                assertTrue(echoes(removed));

                Files.writeString(baton.config, after);
                r = baton.cli("reload");
                assertEquals(0, r.code(), r.output() + baton.logText());
                assertTrue(echoes(added), "added proxy serves");
                assertTrue(echoes(changed), "changed proxy uses its new upstream");
                assertTrue(!echoes(removed), "removed proxy no longer listens");

                // SIGHUP does the same as `baton reload`.
                Files.writeString(baton.config, before);
                BatonProcess.signal(pid, "HUP");
                long deadline = System.nanoTime() + 10_000_000_000L;
                while (!echoes(removed) && System.nanoTime() < deadline) {
                    Thread.sleep(50);
                }
                assertTrue(echoes(removed), "SIGHUP re-added the proxy");
                assertEquals(pid, baton.pid(), "a reload keeps the process");

                Thread.sleep(500);
                load.close();
                flows.close();
                assertEquals(0, load.failed.get(), "failed connections on the unchanged proxy: " + load.errors);
                assertEquals(0, flows.lost(), "lost datagrams on the unchanged udp proxy");
            }
        }
    }

    /** Datagrams the kernel dropped so far at the sockets bound to {@code port} (ss -uamn: skmem d), -1 without ss. */
    static long udpDropsAt(int port) {
        try {
            Process p = new ProcessBuilder("ss", "-uamnH", "sport = :" + port).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes());
            p.waitFor();
            long sum = 0;
            java.util.regex.Matcher m = java.util.regex.Pattern.compile(",d(\\d+)\\)").matcher(out);
            while (m.find()) {
                sum += Long.parseLong(m.group(1));
            }
            return sum;
        } catch (Exception e) {
            return -1;
        }
    }

    /** UDP sockets on loopback whose receive queue overflowed (ss -uamn: skmem d > 0), for failure messages. */
    static String udpDrops() {
        try {
            Process p = new ProcessBuilder("ss", "-uamn").redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes());
            p.waitFor();
            StringBuilder b = new StringBuilder("udp sockets with drops:");
            String previous = "";
            for (String line : out.split("\n")) {
                java.util.regex.Matcher m = java.util.regex.Pattern.compile(",d(\\d+)\\)").matcher(line);
                if (m.find() && !m.group(1).equals("0")) {
                    b.append("\n  ").append(previous.trim()).append(" drops=").append(m.group(1));
                }
                previous = line;
            }
            return b.toString();
        } catch (Exception e) {
            return "(ss unavailable)";
        }
    }

    private static boolean echoes(int port) {
        try (Socket s = new Socket("127.0.0.1", port)) {
            s.setSoTimeout(3000);
            s.getOutputStream().write("ping".getBytes());
            byte[] b = new byte[4];
            Loads.readFully(s.getInputStream(), b);
            return new String(b).equals("ping");
        } catch (Exception e) {
            return false;
        }
    }
}
