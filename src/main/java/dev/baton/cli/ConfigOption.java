package dev.baton.cli;

import java.nio.file.Files;
import java.nio.file.Path;

/** The -c option shared by every command that reads the configuration. */
public final class ConfigOption {
    public static final String DESCRIPTION = "Configuration file (default: /etc/baton/baton.conf if it exists, "
            + "else conf/baton.conf of this installation).";

    private ConfigOption() {
    }

    /** The configuration file the command line names, or the default one. */
    public static Path path(Cli.Args args) {
        String file = args.option("--config");
        if (file != null) {
            return Path.of(file).toAbsolutePath();
        }
        Path etc = Path.of("/etc/baton/baton.conf");
        if (Files.exists(etc)) {
            return etc;
        }
        String home = System.getProperty("baton.home");
        return (home != null ? Path.of(home) : Path.of(".")).resolve("conf/baton.conf").toAbsolutePath();
    }
}
