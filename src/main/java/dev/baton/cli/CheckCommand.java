package dev.baton.cli;

import dev.baton.config.BatonConfig;
import dev.baton.config.ConfigException;
import dev.baton.config.ConfigLoader;
import dev.baton.daemon.Daemon;
import dev.baton.socket.Transport;
import picocli.CommandLine.Command;

import java.util.List;
import picocli.CommandLine.Mixin;

import java.util.concurrent.Callable;

@Command(name = "check", mixinStandardHelpOptions = true,
        description = "Validate the configuration and the runtime mappings of its state-dir: every error as "
                + "FILE:LINE: key: message; exit 1 on any.")
public final class CheckCommand implements Callable<Integer> {
    @Mixin
    ConfigOption config;

    @Override
    public Integer call() {
        try {
            BatonConfig c = ConfigLoader.load(config.path());
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
