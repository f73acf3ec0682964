package dev.baton.cli;

import dev.baton.testkit.EchoServer;
import dev.baton.testkit.Launcher;
import dev.baton.testkit.Net;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

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
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The real launcher, target/baton/bin/baton, as a child process. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class LauncherIT {
    @TempDir
    Path dir;

    @BeforeAll
    static void launcherExists() {
        assertTrue(Files.isExecutable(Launcher.bin()), "missing " + Launcher.bin() + " (run mvn package)");
    }

    private Path conf(String name, String text) throws Exception {
        Path f = dir.resolve(name);
        Files.writeString(f, text);
        return f;
    }

    @Test
    void version() throws Exception {
        Launcher.Result r = Launcher.run(dir, "version");
        assertEquals(0, r.exit(), r.output());
        assertTrue(r.output().matches("(?s)baton \\d+\\.\\d+\\.\\d+.*"), r.output());
    }

    /**
     * The JVM the launcher starts has a young generation capped at 11 MiB and, where the JDK has the
     * option (17.0.10 and later, 21 and later: read from the JDK's release file), trims its C heap
     * every second; a JDK without it must still start.
     */
    @Test
    void youngGenerationCapAndNativeHeapTrim() throws Exception {
        Path out = dir.resolve("flags.txt");
        ProcessBuilder b = Launcher.builder(out, "version");
        b.environment().put("BATON_JAVA_OPTS", "-XX:+PrintFlagsFinal");
        Process p = b.start();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        String flags = Files.readString(out);
        assertEquals(0, p.exitValue(), flags);
        assertTrue(flags.matches("(?s).*\\bMaxNewSize\\s+= 11534336\\b.*"), flags);
        Runtime.Version v = Runtime.version();
        boolean trims = v.feature() >= 21 || (v.feature() == 17 && v.update() >= 10);
        assertEquals(trims, flags.matches("(?s).*\\bTrimNativeHeapInterval\\s+= 1000\\b.*"),
                "java " + v + ": " + flags.lines().filter(l -> l.contains("TrimNative")).toList());
    }

    /**
     * Netty's buffer-leak sampling is off in the daemon (a stack trace per sampled buffer costs a
     * new connection some 3% of its CPU), and BATON_JAVA_OPTS turns it back on for a diagnosis.
     */
    @Test
    void leakSamplingOffUnlessAskedFor() throws Exception {
        assertEquals("disabled", property("io.netty.leakDetection.level", ""));
        assertEquals("simple", property("io.netty.leakDetection.level", "-Dio.netty.leakDetection.level=simple"));
    }

    /**
     * Netty's allocator events for JDK Flight Recorder are off (registering them set up JFR on a
     * worker's first connection, 0.15 s of a start), and BATON_JAVA_OPTS turns them back on.
     */
    @Test
    void flightRecorderEventsOffUnlessAskedFor() throws Exception {
        assertEquals("false", property("io.netty.jfr.enabled", ""));
        assertEquals("true", property("io.netty.jfr.enabled", "-Dio.netty.jfr.enabled=true"));
    }

    /** The value of a system property in the JVM the launcher starts, with these BATON_JAVA_OPTS. */
    private String property(String name, String javaOpts) throws Exception {
        Path out = dir.resolve("properties.txt");
        ProcessBuilder b = Launcher.builder(out, "version");
        b.environment().put("BATON_JAVA_OPTS", "-XshowSettings:properties " + javaOpts);
        Process p = b.start();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        String text = Files.readString(out);
        assertEquals(0, p.exitValue(), text);
        return text.lines().map(String::strip).filter(l -> l.startsWith(name + " = "))
                .map(l -> l.substring(l.indexOf('=') + 1).strip()).findFirst().orElse("(not set)");
    }

    /** `baton cds-archive FILE` builds a class-data archive that a later start maps (-Xshare:on fails otherwise). */
    @Test
    void classDataArchiveIsBuiltAndUsed() throws Exception {
        Path archive = dir.resolve("cds/baton.jsa");
        Launcher.Result built = Launcher.run(dir, "cds-archive", archive.toString());
        assertEquals(0, built.exit(), built.output());
        assertTrue(Files.size(archive) > 1_000_000, "archive size " + Files.size(archive));

        Path out = dir.resolve("version.txt");
        ProcessBuilder b = Launcher.builder(out, "version");
        b.environment().put("BATON_CDS_ARCHIVE", archive.toString());
        b.environment().put("BATON_JAVA_OPTS", "-Xshare:on");
        Process p = b.start();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), Files.readString(out));
        assertTrue(Files.readString(out).startsWith("baton "), Files.readString(out));

        // A stale or damaged archive is ignored quietly: the start goes on without it.
        Files.write(archive, new byte[4096]);
        b.environment().remove("BATON_JAVA_OPTS");
        p = b.start();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), Files.readString(out));
        assertTrue(Files.readString(out).startsWith("baton "), "nothing but the version: " + Files.readString(out));
    }

    @Test
    void checkGoodAndBadFiles() throws Exception {
        Path good = conf("good.conf", "baton {\n  proxies {\n    a {\n      listen = \"127.0.0.1:7001\"\n"
                + "      upstreams = \"127.0.0.1:7002\"\n    }\n  }\n}\n");
        Launcher.Result ok = Launcher.run(dir, "check", "-c", good.toString());
        assertEquals(0, ok.exit(), ok.output());
        assertTrue(ok.output().contains("1 proxies (1 tcp, 0 udp)") || ok.output().contains("1 prox"), ok.output());

        Path bad = conf("bad.conf", "baton {\n  workerz = 1\n  workers = 0\n}\n");
        Launcher.Result err = Launcher.run(dir, "check", "-c", bad.toString());
        assertEquals(1, err.exit(), err.output());
        assertTrue(err.output().contains(bad + ":2: baton.workerz: unknown key (did you mean 'workers'?)"), err.output());
        assertTrue(err.output().contains(bad + ":3: baton.workers: 0 is out of range 1-1024"), err.output());
        assertFalse(err.output().contains("\tat "), "no stack trace: " + err.output());
    }

    @Test
    void runRelaysTcpAndUdpAndStopsOnSigterm() throws Exception {
        try (EchoServer up = EchoServer.echo();
             DatagramSocket udpUp = new DatagramSocket(new InetSocketAddress(Net.LOOPBACK, 0))) {
            Thread udpEcho = new Thread(() -> {
                byte[] buf = new byte[2048];
                while (!udpUp.isClosed()) {
                    try {
                        DatagramPacket p = new DatagramPacket(buf, buf.length);
                        udpUp.receive(p);
                        udpUp.send(new DatagramPacket(p.getData(), p.getLength(), p.getSocketAddress()));
                    } catch (Exception e) {
                        return;
                    }
                }
            });
            udpEcho.setDaemon(true);
            udpEcho.start();
            int port = Net.freePort(); // used for tcp and udp alike
            Path cfg = conf("run.conf", "baton {\n  workers = 2\n  drain-timeout = 1s\n  proxies {\n"
                    + "    t { listen = \"127.0.0.1:" + port + "\", upstreams = \"127.0.0.1:" + up.port() + "\" }\n"
                    + "    u { protocol = udp, listen = \"127.0.0.1:" + port + "\", upstreams = \"127.0.0.1:" + udpUp.getLocalPort() + "\" }\n"
                    + "  }\n}\n");
            Path pid = dir.resolve("baton.pid");
            Path out = dir.resolve("run.out");
            Process p = Launcher.builder(out, "run", "-c", cfg.toString(), "--pid-file", pid.toString()).start();
            try {
                // Ready = pid file written and the TCP port accepts.
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
                boolean up2 = false;
                while (!up2 && System.nanoTime() < deadline && p.isAlive()) {
                    try (Socket s = new Socket()) {
                        s.connect(new InetSocketAddress(Net.LOOPBACK, port), 1000);
                        up2 = Files.exists(pid);
                    } catch (java.io.IOException e) {
                        // not listening yet
                    }
                    if (!up2) {
                        // Also when the TCP port already accepts but the start is not finished: a tight
                        // loop here opens thousands of proxied connections and exhausts descriptors.
                        Thread.sleep(100);
                    }
                }
                assertTrue(up2, "daemon up: " + Files.readString(out));
                assertEquals(String.valueOf(p.pid()), Files.readString(pid).trim(), "pid file holds the child's pid");

                try (Socket s = new Socket()) {
                    s.connect(new InetSocketAddress(Net.LOOPBACK, port), 5000);
                    s.setSoTimeout(10_000);
                    s.getOutputStream().write("tcp hello".getBytes(StandardCharsets.US_ASCII));
                    s.shutdownOutput();
                    assertEquals("tcp hello", new String(s.getInputStream().readAllBytes(), StandardCharsets.US_ASCII));
                }
                try (DatagramSocket c = new DatagramSocket(new InetSocketAddress(Net.LOOPBACK, 0))) {
                    c.setSoTimeout(5000);
                    byte[] b = "udp hello".getBytes(StandardCharsets.US_ASCII);
                    c.send(new DatagramPacket(b, b.length, new InetSocketAddress(Net.LOOPBACK, port)));
                    DatagramPacket r = new DatagramPacket(new byte[100], 100);
                    c.receive(r);
                    assertEquals("udp hello", new String(r.getData(), 0, r.getLength(), StandardCharsets.US_ASCII));
                }

                stopsCleanlyOnSigterm(p, out, pid);
            } finally {
                p.destroyForcibly();
            }
        }
    }

    /** SIGTERM (Process.destroy sends it): exit status 0 and the pid file removed. */
    private static void stopsCleanlyOnSigterm(Process p, Path out, Path pid) throws Exception {
        p.destroy();
        assertTrue(p.waitFor(30, TimeUnit.SECONDS), "exited after SIGTERM");
        assertEquals(0, p.exitValue(), Files.readString(out));
        assertFalse(Files.exists(pid), "pid file removed");
    }

    /**
     * Started with HUP, INT and TERM ignored (as under nohup, or from a shell that ignores them):
     * the JVM would keep ignoring them and install no handler; baton puts them back, so SIGHUP
     * still reloads and SIGTERM still stops it cleanly.
     */
    @Test
    void signalsWorkWhenStartedWithThemIgnored() throws Exception {
        int port = Net.freePort();
        Path cfg = conf("nohup.conf", "baton {\n  drain-timeout = 1s\n  proxies {\n"
                + "    t { listen = \"127.0.0.1:" + port + "\", upstreams = \"127.0.0.1:1\" }\n  }\n}\n");
        Path pid = dir.resolve("nohup.pid");
        Path out = dir.resolve("nohup.out");
        ProcessBuilder b = Launcher.builder(out, "run", "-c", cfg.toString(), "--pid-file", pid.toString());
        List<String> cmd = new ArrayList<>(List.of("bash", "-c", "trap '' HUP INT TERM; exec \"$0\" \"$@\""));
        cmd.addAll(b.command());
        b.command(cmd);
        Process p = b.start();
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (!Files.readString(out).contains(" started (pid") && System.nanoTime() < deadline && p.isAlive()) {
                Thread.sleep(50);
            }
            assertTrue(Files.readString(out).contains(" started (pid"), Files.readString(out));
            new ProcessBuilder("kill", "-HUP", String.valueOf(p.pid())).start().waitFor();
            while (!Files.readString(out).contains("reloaded") && System.nanoTime() < deadline && p.isAlive()) {
                Thread.sleep(50);
            }
            assertTrue(Files.readString(out).contains("reloaded"), "SIGHUP reloads:\n" + Files.readString(out));
            stopsCleanlyOnSigterm(p, out, pid);
        } finally {
            p.destroyForcibly();
        }
    }

    /**
     * Netty's JNI libraries load from the distribution (lib/native, on java.library.path), not
     * from copies in a temporary directory: where that is mounted noexec (hardened hosts), Netty's
     * own way failed and transport epoll could not run.
     */
    @Test
    void nativeTransportLoadsWhereTheTemporaryDirectoryIsNoexec() throws Exception {
        Path noexec = dir.resolve("noexec");
        Files.createDirectories(noexec);
        Process m = new ProcessBuilder("mount", "-t", "tmpfs", "-o", "noexec,size=16m", "tmpfs", noexec.toString())
                .redirectErrorStream(true).start();
        assumeTrue(m.waitFor() == 0, "mounting a tmpfs needs root");
        try (ServerSocket taken = new ServerSocket(0, 1, Net.LOOPBACK)) {
            Path cfg = conf("noexec.conf", "baton {\n  transport = epoll\n  proxies {\n    t { listen = \"127.0.0.1:"
                    + taken.getLocalPort() + "\", upstreams = \"127.0.0.1:1\" }\n  }\n}\n");
            String log = logOf(cfg, Map.of("BATON_JAVA_OPTS", "-Dio.netty.tmpdir=" + noexec));
            assertTrue(log.contains("Daemon: transport epoll"), log);
            try (var files = Files.list(noexec)) {
                assertEquals(0, files.count(), "nothing copied to the temporary directory");
            }
        } finally {
            new ProcessBuilder("umount", noexec.toString()).start().waitFor();
        }
    }

    @Test
    void portInUseIsOneLineAndExit1() throws Exception {
        try (ServerSocket taken = new ServerSocket(0, 1, Net.LOOPBACK)) {
            Path cfg = conf("busy.conf", "baton {\n  proxies {\n    t { listen = \"127.0.0.1:" + taken.getLocalPort()
                    + "\", upstreams = \"127.0.0.1:1\" }\n  }\n}\n");
            Launcher.Result r = Launcher.run(dir, "run", "-c", cfg.toString(), "--pid-file", dir.resolve("x.pid").toString());
            assertEquals(1, r.exit(), r.output());
            assertTrue(r.output().contains("address already in use"), r.output());
            assertFalse(r.output().contains("\tat ") || r.output().contains("Exception"), "no stack trace: " + r.output());
            long errorLines = r.output().lines().filter(l -> l.contains("address already in use")).count();
            assertEquals(1, errorLines, r.output());
        }
    }

    /**
     * The shipped logback.xml is applied in code (LogConfigurator) with the same result as logback
     * reading it: the pattern, and BATON_LOG_LEVEL for the root; an edited file is read by logback.
     * A start that fails on a busy port logs an INFO line and an ERROR line and exits at once.
     */
    @Test
    void loggingFollowsTheShippedFileOrAnEditedOne() throws Exception {
        try (ServerSocket taken = new ServerSocket(0, 1, Net.LOOPBACK)) {
            Path cfg = conf("log.conf", "baton {\n  proxies {\n    t { listen = \"127.0.0.1:" + taken.getLocalPort()
                    + "\", upstreams = \"127.0.0.1:1\" }\n  }\n}\n");
            String line = "\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3} ";
            String shipped = logOf(cfg, Map.of());
            assertTrue(shipped.lines().anyMatch(l -> l.matches(line + "INFO  \\[main\\] Daemon: transport .*")), shipped);
            assertTrue(shipped.lines().anyMatch(l -> l.matches(line + "ERROR \\[main\\] baton: .*address already in use.*")),
                    shipped);

            String warn = logOf(cfg, Map.of("BATON_LOG_LEVEL", "WARN"));
            assertFalse(warn.contains(" INFO "), warn);
            assertTrue(warn.lines().anyMatch(l -> l.matches(line + "ERROR \\[main\\] baton: .*address already in use.*")), warn);

            Path edited = dir.resolve("edited-logback.xml");
            Files.writeString(edited, Files.readString(Path.of("conf/logback.xml"))
                    .replace("<pattern>", "<pattern>EDITED "));
            String mine = logOf(cfg, Map.of("BATON_JAVA_OPTS", "-Dlogback.configurationFile=" + edited));
            assertTrue(mine.lines().anyMatch(l -> l.matches("EDITED " + line + "INFO  \\[main\\] Daemon: transport .*")), mine);
        }
    }

    private String logOf(Path cfg, Map<String, String> env) throws Exception {
        Path out = dir.resolve("log.out");
        ProcessBuilder b = Launcher.builder(out, "run", "-c", cfg.toString());
        b.environment().putAll(env);
        Process p = b.start();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        String text = Files.readString(out);
        assertEquals(1, p.exitValue(), text);
        return text;
    }
}
