package dev.baton.systemd;

import dev.baton.socket.Transport;
import dev.baton.testkit.Launcher;
import dev.baton.testkit.Net;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Socket activation with systemd's own activator (systemd-socket-activate binds the socket and
 * passes it as LISTEN_FDS, as a .socket unit does): baton adopts it through the handoff path.
 */
class SocketActivationIT {
    @TempDir
    Path dir;

    static Stream<Transport> transports() {
        return Net.transports().filter(Transport::supportsReusePortAndHandoff);
    }

    /** Connects once the activator has bound the port (it does so right after starting). */
    private static Socket connectWhenListening(int port) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (true) {
            try {
                return new Socket("127.0.0.1", port);
            } catch (IOException e) {
                assertTrue(System.nanoTime() < deadline, "activator never listened");
                Thread.sleep(20);
            }
        }
    }

    private static boolean activatorPresent() {
        return Files.isExecutable(Path.of("/usr/bin/systemd-socket-activate"));
    }

    @ParameterizedTest
    @MethodSource("transports")
    void an_activated_socket_is_adopted_and_serves(Transport t) throws Exception {
        assumeTrue(activatorPresent(), "systemd-socket-activate not installed");
        try (ServerSocket upstream = new ServerSocket(0, 50, Net.LOOPBACK)) {
            Thread echo = new Thread(() -> {
                while (!upstream.isClosed()) {
                    try (Socket s = upstream.accept()) {
                        byte[] b = new byte[5];
                        s.getInputStream().readNBytes(b, 0, 5);
                        s.getOutputStream().write(b);
                    } catch (IOException e) {
                        return;
                    }
                }
            });
            echo.setDaemon(true);
            echo.start();
            int port = Net.freePort();
            Path conf = Net.writeConfig(dir, "baton.conf", "baton { transport = " + Net.configName(t)
                    + ", control-socket = \"" + dir.resolve("ctl.sock") + "\", drain-timeout = 1s\n"
                    + "  proxies { web { listen = \"127.0.0.1:" + port + "\", upstreams = \"127.0.0.1:"
                    + upstream.getLocalPort() + "\" } } }\n");
            Path log = dir.resolve("log.txt");
            Process p = new ProcessBuilder("/usr/bin/systemd-socket-activate", "-l", "127.0.0.1:" + port,
                    "--fdname=web", Launcher.bin().toString(), "run", "-c", conf.toString())
                    .redirectErrorStream(true).redirectOutput(log.toFile()).start();
            try {
                // The activator binds at once and starts baton on the first connection, which
                // waits in the accept queue of the very socket baton then adopts.
                connectWhenListening(port).close();
                for (int i = 0; i < 5; i++) {
                    try (Socket c = new Socket("127.0.0.1", port)) {
                        c.setSoTimeout(30000);
                        c.getOutputStream().write("hello".getBytes(StandardCharsets.UTF_8));
                        assertEquals("hello", new String(c.getInputStream().readNBytes(5), StandardCharsets.UTF_8));
                    }
                }
                String text = Files.readString(log);
                assertTrue(text.contains("socket activation: fd 3 (web) is tcp 127.0.0.1:" + port), text);
                assertTrue(text.contains("adopted tcp on 127.0.0.1:" + port), text);
            } finally {
                p.destroy();
                p.waitFor(15, TimeUnit.SECONDS);
            }
        }
    }

    @ParameterizedTest
    @MethodSource("transports")
    void a_socket_no_proxy_listens_on_stops_the_start(Transport t) throws Exception {
        assumeTrue(activatorPresent(), "systemd-socket-activate not installed");
        int configured = Net.freePort();
        int stray = Net.freePort();
        Path conf = Net.writeConfig(dir, "baton.conf", "baton { transport = " + Net.configName(t)
                + ", control-socket = \"" + dir.resolve("ctl.sock") + "\"\n"
                + "  proxies { web { listen = \"127.0.0.1:" + configured + "\", upstreams = \"127.0.0.1:1\" } } }\n");
        Path log = dir.resolve("log.txt");
        Process p = new ProcessBuilder("/usr/bin/systemd-socket-activate", "-l", "127.0.0.1:" + stray,
                Launcher.bin().toString(), "run", "-c", conf.toString())
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        try {
            // The activator starts the service on the first connection.
            try (Socket s = connectWhenListening(stray)) {
                assertTrue(p.waitFor(30, TimeUnit.SECONDS), "baton exits");
            }
            assertEquals(1, p.exitValue());
            String text = Files.readString(log);
            assertTrue(text.contains("127.0.0.1:" + stray), text);
            assertTrue(!text.contains("\tat "), "no stack trace: " + text);
        } finally {
            p.destroyForcibly();
        }
    }
}
