package dev.baton.cli;

import dev.baton.config.BatonConfig;
import dev.baton.config.ConfigException;
import dev.baton.config.ConfigLoader;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

import java.util.concurrent.Callable;

@Command(name = "check", mixinStandardHelpOptions = true,
        description = "Validate the configuration: every error as FILE:LINE: key: message; exit 1 on any.")
public final class CheckCommand implements Callable<Integer> {
    @Mixin
    ConfigOption config;

    @Override
    public Integer call() {
        try {
            BatonConfig c = ConfigLoader.load(config.path());
            System.out.println(c.source() + ": ok: " + c.summary());
            return 0;
        } catch (ConfigException e) {
            e.errors().forEach(System.err::println);
            return 1;
        }
    }
}
