package dev.baton.cli;

import dev.baton.config.ConfigLoader;
import dev.baton.daemon.Daemon;
import dev.baton.socket.Transport;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.Callable;

/**
 * The training run behind `baton cds-archive`: the launcher starts this command with
 * -XX:ArchiveClassesAtExit, so every class a daemon loads on its way to relaying its first
 * connection and datagram lands in a class-data archive that later starts read instead of
 * parsing and verifying the jars again. On loopback ports picked free, on every transport this
 * machine can run; it touches nothing else.
 */
public final class CdsTrainingCommand implements Callable<Integer> {
    private static final InetAddress LOOPBACK = InetAddress.getLoopbackAddress();

    @Override
    public Integer call() throws Exception {
        // The training's own start and stop lines would only be noise; problems still show.
        // (io.netty has its own level in logback.xml: its io_uring loops may warn of a close that
        // finishes after they stopped, which is harmless here.)
        for (String name : new String[] {org.slf4j.Logger.ROOT_LOGGER_NAME, "io.netty"}) {
            ((ch.qos.logback.classic.Logger) LoggerFactory.getLogger(name)).setLevel(ch.qos.logback.classic.Level.ERROR);
        }
        Path dir = Files.createTempDirectory("baton-cds");
        try (ServerSocket tcpEcho = new ServerSocket(0, 16, LOOPBACK);
             DatagramSocket udpEcho = new DatagramSocket(new InetSocketAddress(LOOPBACK, 0))) {
            Thread tcp = new Thread(() -> echo(tcpEcho), "cds-tcp-echo");
            Thread udp = new Thread(() -> echo(udpEcho), "cds-udp-echo");
            tcp.setDaemon(true);
            udp.setDaemon(true);
            tcp.start();
            udp.start();
            for (Transport t : Transport.values()) {
                if (t.isAvailable()) {
                    exercise(dir, t, tcpEcho.getLocalPort(), udpEcho.getLocalPort());
                }
            }
        } finally {
            try (var files = Files.list(dir)) {
                for (Path p : files.toList()) {
                    Files.deleteIfExists(p);
                }
            }
            Files.deleteIfExists(dir);
        }
        return 0;
    }

    private static void exercise(Path dir, Transport t, int tcpUpstream, int udpUpstream) throws Exception {
        int tcpPort = freePort();
        int udpPort = freePort();
        Path file = dir.resolve(t.label() + ".conf");
        Files.writeString(file, "baton {\n transport = " + t.label() + "\n workers = 1\n drain-timeout = 0s\n"
                + " control-socket = \"" + dir.resolve("control.sock") + "\"\n"
                // Its own state-dir: the host's runtime mappings (/var/lib/baton) are not the training's.
                + " state-dir = \"" + dir + "\"\n proxies {\n"
                + "  t { listen = \"127.0.0.1:" + tcpPort + "\", upstreams = \"127.0.0.1:" + tcpUpstream + "\" }\n"
                + "  u { protocol = udp, listen = \"127.0.0.1:" + udpPort + "\", upstreams = \"127.0.0.1:"
                + udpUpstream + "\" }\n }\n}\n");
        Daemon daemon = new Daemon(ConfigLoader.load(file));
        daemon.start();
        try {
            byte[] hello = ("hello over " + t.label()).getBytes(StandardCharsets.UTF_8);
            try (Socket s = new Socket(LOOPBACK, tcpPort)) {
                s.setSoTimeout(5000);
                s.getOutputStream().write(hello);
                s.shutdownOutput();
                byte[] back = s.getInputStream().readAllBytes();
                if (!Arrays.equals(hello, back)) {
                    throw new IOException(t.label() + ": TCP echo came back wrong");
                }
            }
            try (DatagramSocket s = new DatagramSocket()) {
                s.setSoTimeout(5000);
                s.send(new DatagramPacket(hello, hello.length, LOOPBACK, udpPort));
                DatagramPacket back = new DatagramPacket(new byte[hello.length], hello.length);
                s.receive(back);
            }
        } finally {
            daemon.stop();
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, LOOPBACK)) {
            return s.getLocalPort();
        }
    }

    private static void echo(ServerSocket server) {
        while (!server.isClosed()) {
            try (Socket s = server.accept(); InputStream in = s.getInputStream(); OutputStream out = s.getOutputStream()) {
                in.transferTo(out);
            } catch (IOException e) {
                return;
            }
        }
    }

    private static void echo(DatagramSocket socket) {
        byte[] buf = new byte[2048];
        while (!socket.isClosed()) {
            try {
                DatagramPacket p = new DatagramPacket(buf, buf.length);
                socket.receive(p);
                socket.send(new DatagramPacket(buf, p.getLength(), p.getSocketAddress()));
            } catch (IOException e) {
                return;
            }
        }
    }
}
