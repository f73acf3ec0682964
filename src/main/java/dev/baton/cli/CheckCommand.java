package dev.baton.cli;

import dev.baton.config.BatonConfig;
import dev.baton.config.ConfigException;
import dev.baton.config.ConfigLoader;
import dev.baton.daemon.Daemon;
import dev.baton.socket.Transport;

import java.nio.file.Path;
import java.util.List;

/** `baton check`: validates the configuration, prints every problem, exit 1 on any. */
public final class CheckCommand {
    private CheckCommand() {
    }

    public static int run(Path config) {
        try {
            BatonConfig c = ConfigLoader.load(config);
            Transport t;
            try {
                t = Transport.choose(c.transport());
            } catch (IllegalStateException e) {
                System.err.println(c.source() + ": baton.transport: " + e.getMessage());
                return 1;
            }
            List<String> unsupported = Daemon.unsupported(c, t);
            if (!unsupported.isEmpty()) {
                unsupported.forEach(u -> System.err.println(c.source() + ": baton.transport: " + u));
                return 1;
            }
            System.out.println(c.source() + ": ok: " + c.summary() + " (" + t.label() + " here)");
            if (!c.runtime().entries().isEmpty()) {
                System.out.println(c.runtime().file() + ": ok: " + c.runtime().entries().size()
                        + " runtime mappings (" + c.runtime().proxies().size() + " of the proxies above)");
            }
            return 0;
        } catch (ConfigException e) {
            e.errors().forEach(System.err::println);
            return 1;
        }
    }
}
