package dev.baton.relay;

import dev.baton.config.ConfigLoader;
import dev.baton.daemon.Daemon;
import dev.baton.socket.Transport;

import java.net.DatagramSocket;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/** An in-process daemon on a configuration written to a temp file, for one transport. */
final class Fixture implements AutoCloseable {
    final Daemon daemon;

    Fixture(Path dir, String transport, String body) throws Exception {
        Path file = dir.resolve("baton.conf");
        Files.writeString(file, "baton {\n transport = " + transport + "\n workers = 2\n drain-timeout = 1s\n"
                + " control-socket = \"" + dir.resolve("ctl.sock") + "\"\n" + body + "\n}\n");
        daemon = new Daemon(ConfigLoader.load(file));
        daemon.start();
    }

    static Stream<String> transports() {
        List<String> t = new ArrayList<>();
        for (Transport x : Transport.values()) {
            if (x.isAvailable()) {
                t.add(x.label());
            }
        }
        return t.stream();
    }

    static int freeTcpPort() throws Exception {
        try (ServerSocket s = new ServerSocket()) {
            s.bind(new InetSocketAddress("127.0.0.1", 0));
            return s.getLocalPort();
        }
    }

    static int freeUdpPort() throws Exception {
        try (DatagramSocket s = new DatagramSocket(new InetSocketAddress("127.0.0.1", 0))) {
            return s.getLocalPort();
        }
    }

    @Override
    public void close() {
        daemon.stop();
    }
}
