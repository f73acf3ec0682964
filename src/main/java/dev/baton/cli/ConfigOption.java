package dev.baton.cli;

import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;

/** The -c option shared by every command that reads the configuration. */
public final class ConfigOption {
    @Option(names = {"-c", "--config"}, paramLabel = "FILE",
            description = "Configuration file (default: /etc/baton/baton.conf if it exists, "
                    + "else conf/baton.conf of this installation).")
    Path file;

    public Path path() {
        if (file != null) {
            return file.toAbsolutePath();
        }
        Path etc = Path.of("/etc/baton/baton.conf");
        if (Files.exists(etc)) {
            return etc;
        }
        String home = System.getProperty("baton.home");
        return (home != null ? Path.of(home) : Path.of(".")).resolve("conf/baton.conf").toAbsolutePath();
    }
}
