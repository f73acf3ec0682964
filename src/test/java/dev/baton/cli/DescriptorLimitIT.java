package dev.baton.cli;

import dev.baton.testkit.NamedBackend;
import dev.baton.testkit.Launcher;
import dev.baton.testkit.Net;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * baton run by the real launcher with 200 file descriptors (prlimit), then given more clients
 * than that: it says so once, not once per connection or per failed accept, does not spin, and
 * serves again once the clients are gone.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class DescriptorLimitIT {
    @TempDir
    Path dir;

    @Test
    void runningOutOfDescriptorsIsReportedOnceAndServiceComesBack() throws Exception {
        try (NamedBackend up = new NamedBackend("be", Net.LOOPBACK, 0)) {
            int port = Net.freePort();
            Path conf = dir.resolve("baton.conf");
            Files.writeString(conf, "baton {\n  transport = epoll\n  workers = 2\n  drain-timeout = 1s\n  proxies {\n"
                    + "    t { listen = \"127.0.0.1:" + port + "\", upstreams = \"127.0.0.1:" + up.port() + "\" }\n"
                    + "    u { protocol = udp, listen = \"127.0.0.1:" + port + "\", upstreams = \"127.0.0.1:" + up.port()
                    + "\" }\n  }\n}\n");
            Path log = dir.resolve("baton.log");
            ProcessBuilder b = new ProcessBuilder("prlimit", "--nofile=200:200", Launcher.bin().toString(), "run",
                    "-c", conf.toString()).redirectErrorStream(true).redirectOutput(log.toFile());
            Process p = b.start();
            List<Socket> clients = new ArrayList<>();
            DatagramSocket udp = null;
            try {
                waitFor(log, "started", p);
                for (int i = 0; i < 200; i++) { // each proxied connection takes two of baton's descriptors
                    Socket s = new Socket();
                    s.connect(new InetSocketAddress(Net.LOOPBACK, port), 5000);
                    clients.add(s);
                }
                // A new UDP client needs a socket too: its flow cannot open now, and must not stay
                // behind as a dead entry that swallows this client's datagrams later on.
                udp = new DatagramSocket(new InetSocketAddress(Net.LOOPBACK, 0));
                udp.send(new DatagramPacket(new byte[8], 8, new InetSocketAddress(Net.LOOPBACK, port)));
                Thread.sleep(2500); // accepting paused and resumed twice meanwhile
                long cpuBefore = cpuTicks(p.pid());
                Thread.sleep(2000);
                long cpu = cpuTicks(p.pid()) - cpuBefore;
                assertTrue(cpu < 50, "baton used " + cpu + " ticks in 2 s while out of descriptors (spinning?)");

                String text = Files.readString(log);
                long reports = text.lines().filter(l -> l.contains("out of file descriptors")).count();
                assertEquals(1, reports, "one report within 10 s:\n" + text);
                assertTrue(text.contains("limit 200"), text);
                assertFalse(text.contains("reached at the tail of the pipeline"), text);
                assertTrue(text.lines().filter(l -> l.contains("no upstream reachable")).count() == 0, text);
                assertTrue(p.isAlive(), text);

                for (Socket s : clients) {
                    s.close();
                }
                clients.clear();
                Thread.sleep(1500); // the paused listener accepts again within a second
                try (Socket s = new Socket()) {
                    s.connect(new InetSocketAddress(Net.LOOPBACK, port), 5000);
                    s.setSoTimeout(5000);
                    byte[] msg = "served again".getBytes(StandardCharsets.US_ASCII);
                    s.getOutputStream().write(msg);
                    s.shutdownOutput();
                    assertArrayEquals("be\nserved again".getBytes(StandardCharsets.US_ASCII),
                            s.getInputStream().readAllBytes(), Files.readString(log));
                }
                udp.setSoTimeout(200); // a reply to the first datagram, if its flow did open, is not the one checked
                try {
                    while (true) {
                        udp.receive(new DatagramPacket(new byte[2048], 2048));
                    }
                } catch (java.net.SocketTimeoutException drained) {
                    // nothing (more) waiting
                }
                assertEquals("be", NamedBackend.udpName(udp, new InetSocketAddress(Net.LOOPBACK, port)),
                        Files.readString(log));
                String after = Files.readString(log);
                assertFalse(after.contains("Exception"), "no stack traces:\n" + after);
            } finally {
                for (Socket s : clients) {
                    s.close();
                }
                if (udp != null) {
                    udp.close();
                }
                p.destroy();
                if (!p.waitFor(20, TimeUnit.SECONDS)) {
                    p.destroyForcibly();
                }
            }
        }
    }

    private static void waitFor(Path log, String text, Process p) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!Files.exists(log) || !Files.readString(log).contains(text)) {
            assertTrue(p.isAlive(), () -> "baton exited:\n" + read(log));
            assertTrue(System.nanoTime() < deadline, () -> "baton did not start:\n" + read(log));
            Thread.sleep(50);
        }
    }

    private static String read(Path log) {
        try {
            return Files.readString(log);
        } catch (IOException e) {
            return "(no log)";
        }
    }

    /** utime + stime of a process and its threads, in clock ticks. */
    private static long cpuTicks(long pid) throws IOException {
        String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
        String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        return Long.parseLong(f[11]) + Long.parseLong(f[12]);
    }
}
