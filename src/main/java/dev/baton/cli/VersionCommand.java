package dev.baton.cli;

import dev.baton.Version;
import picocli.CommandLine.Command;

@Command(name = "version", mixinStandardHelpOptions = true, description = "Print the version.")
public final class VersionCommand implements Runnable {
    @Override
    public void run() {
        System.out.println("baton " + Version.get());
    }
}
