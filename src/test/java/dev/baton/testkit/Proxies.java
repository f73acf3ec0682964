package dev.baton.testkit;

import dev.baton.config.ConfigLoader;
import dev.baton.daemon.Daemon;
import dev.baton.socket.Transport;

import java.nio.file.Path;

/** Starts an in-process daemon from a config text written to a temp file. */
public final class Proxies {
    private Proxies() {
    }

    /** {@code proxiesBlock} is the content of baton.proxies { ... }. */
    public static Daemon start(Path dir, Transport t, int workers, String proxiesBlock) throws Exception {
        Daemon d = new Daemon(ConfigLoader.load(write(dir, t, workers, proxiesBlock)));
        d.start();
        return d;
    }

    /** Reloads {@code d} with this proxies block (same transport and workers as it was started with). */
    public static void reload(Daemon d, Path dir, Transport t, int workers, String proxiesBlock) throws Exception {
        d.reload(ConfigLoader.load(write(dir, t, workers, proxiesBlock)));
    }

    private static Path write(Path dir, Transport t, int workers, String proxiesBlock) throws Exception {
        String text = "baton {\n  transport = " + t.label() + "\n  workers = " + workers
                + "\n  drain-timeout = 0s\n  proxies {\n" + proxiesBlock + "\n  }\n}\n";
        return Net.writeConfig(dir, "baton-" + System.nanoTime() + ".conf", text);
    }
}
