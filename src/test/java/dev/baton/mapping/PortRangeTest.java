package dev.baton.mapping;

import dev.baton.config.BatonConfig;
import dev.baton.config.ConfigException;
import dev.baton.config.ConfigLoader;
import dev.baton.config.ProxyConfig;
import dev.baton.daemon.Daemon;
import dev.baton.socket.Transport;
import dev.baton.testkit.Net;
import dev.baton.testkit.Proxies;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

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
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Port ranges: "host:8000-8002" -> "host:9000-9002" maps each port to its counterpart. */
class PortRangeTest {
    @TempDir
    Path dir;

    static Stream<Transport> transports() {
        return Net.transports();
    }

    @Test
    void a_range_becomes_one_proxy_per_port_paired_in_order() throws Exception {
        Path f = dir.resolve("r.conf");
        Files.writeString(f, "baton.proxies.web { listen = [\"127.0.0.1:8000-8002\", \"[::1]:8000-8002\"], "
                + "upstreams = [\"10.0.0.2:9000-9002\", \"10.0.0.3:80\"] }\n");
        BatonConfig c = ConfigLoader.load(f);
        assertEquals(List.of("web:8000", "web:8001", "web:8002"), List.copyOf(c.proxies().keySet()));
        ProxyConfig p = c.proxies().get("web:8001");
        assertEquals(List.of(new InetSocketAddress("127.0.0.1", 8001), new InetSocketAddress("::1", 8001)), p.listen());
        assertEquals(List.of(new InetSocketAddress("10.0.0.2", 9001), new InetSocketAddress("10.0.0.3", 80)),
                p.upstreams());
    }

    @Test
    void ranges_of_different_lengths_are_refused_with_file_and_line() throws Exception {
        Path f = dir.resolve("bad.conf");
        Files.writeString(f, "baton.proxies.web {\n  listen = \"127.0.0.1:8000-8009\"\n"
                + "  upstreams = \"10.0.0.2:9000-9004\"\n}\n");
        List<String> e = assertThrows(ConfigException.class, () -> ConfigLoader.load(f)).errors();
        assertEquals(List.of(f + ":3: baton.proxies.web.upstreams: an upstream port range must be as long as the "
                + "listen range (10 ports), not 5"), e);
        Files.writeString(f, "baton.proxies.web {\n  listen = \"127.0.0.1:8009-8000\"\n  upstreams = \"10.0.0.2:1\"\n}\n");
        e = assertThrows(ConfigException.class, () -> ConfigLoader.load(f)).errors();
        assertEquals(List.of(f + ":2: baton.proxies.web.listen: '127.0.0.1:8009-8000': port range 8009-8000 "
                + "is empty or beyond 65535"), e);
    }

    @ParameterizedTest
    @MethodSource("transports")
    void each_port_of_a_range_reaches_its_own_upstream_over_tcp_and_udp(Transport t) throws Exception {
        int up = Net.consecutiveFreePorts(3);
        int listen = Net.consecutiveFreePorts(3);
        List<ServerSocket> tcpUpstreams = new ArrayList<>();
        List<DatagramSocket> udpUpstreams = new ArrayList<>();
        try {
            for (int i = 0; i < 3; i++) {
                ServerSocket s = new ServerSocket(up + i, 50, Net.LOOPBACK);
                tcpUpstreams.add(s);
                String name = "upstream-" + i;
                Thread th = new Thread(() -> {
                    while (!s.isClosed()) {
                        try (Socket c = s.accept()) {
                            c.getOutputStream().write(name.getBytes(StandardCharsets.UTF_8));
                        } catch (IOException e) {
                            return;
                        }
                    }
                });
                th.setDaemon(true);
                th.start();
                DatagramSocket d = new DatagramSocket(new InetSocketAddress(Net.LOOPBACK, up + i));
                udpUpstreams.add(d);
                Thread ud = new Thread(() -> {
                    byte[] b = new byte[64];
                    while (!d.isClosed()) {
                        try {
                            DatagramPacket p = new DatagramPacket(b, b.length);
                            d.receive(p);
                            byte[] r = name.getBytes(StandardCharsets.UTF_8);
                            d.send(new DatagramPacket(r, r.length, p.getSocketAddress()));
                        } catch (IOException e) {
                            return;
                        }
                    }
                });
                ud.setDaemon(true);
                ud.start();
            }
            String range = "127.0.0.1:" + listen + "-" + (listen + 2);
            String upRange = "127.0.0.1:" + up + "-" + (up + 2);
            Daemon d = Proxies.start(dir, t, 2, "t { listen = \"" + range + "\", upstreams = \"" + upRange + "\" }\n"
                    + "u { protocol = udp, listen = \"" + range + "\", upstreams = \"" + upRange + "\" }\n");
            try (DatagramSocket client = new DatagramSocket(new InetSocketAddress(Net.LOOPBACK, 0))) {
                client.setSoTimeout(5000);
                for (int i = 0; i < 3; i++) {
                    try (Socket c = new Socket(Net.LOOPBACK, listen + i)) {
                        c.setSoTimeout(5000);
                        assertEquals("upstream-" + i, new String(c.getInputStream().readAllBytes(), StandardCharsets.UTF_8));
                    }
                    client.send(new DatagramPacket(new byte[] {1}, 1, new InetSocketAddress(Net.LOOPBACK, listen + i)));
                    byte[] b = new byte[64];
                    DatagramPacket p = new DatagramPacket(b, b.length);
                    client.receive(p);
                    assertEquals("upstream-" + i, new String(b, 0, p.getLength(), StandardCharsets.UTF_8));
                    assertEquals(listen + i, p.getPort(), "reply from the port the client sent to");
                }
            } finally {
                d.stop();
            }
        } finally {
            for (ServerSocket s : tcpUpstreams) {
                s.close();
            }
            for (DatagramSocket s : udpUpstreams) {
                s.close();
            }
        }
    }
}
