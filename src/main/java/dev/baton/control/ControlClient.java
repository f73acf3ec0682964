package dev.baton.control;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/** Sends one command to a running baton's control socket and returns its answer. */
public final class ControlClient {
    private ControlClient() {
    }

    /**
     * The control socket a configuration file names. Read leniently: `baton upgrade` must reach
     * the running process even when the file on disk has errors (the successor will report them).
     */
    public static Path socketFor(Path configFile) {
        try {
            Config c = ConfigFactory.parseFile(configFile.toFile())
                    .withFallback(ConfigFactory.parseResources(ControlClient.class.getClassLoader(), "reference.conf"))
                    .resolve();
            return configFile.toAbsolutePath().getParent().resolve(c.getString("baton.control-socket"));
        } catch (RuntimeException e) {
            Config ref = ConfigFactory.parseResources(ControlClient.class.getClassLoader(), "reference.conf");
            return Path.of(ref.getString("baton.control-socket"));
        }
    }

    public static String send(Path socket, String command) throws IOException {
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            ch.connect(UnixDomainSocketAddress.of(socket));
            ch.write(ByteBuffer.wrap((command + "\n").getBytes(StandardCharsets.UTF_8)));
            ByteBuffer b = ByteBuffer.allocate(64 * 1024);
            StringBuilder out = new StringBuilder();
            while (ch.read(b) >= 0) {
                b.flip();
                out.append(StandardCharsets.UTF_8.decode(b));
                b.clear();
            }
            return out.toString();
        }
    }
}
