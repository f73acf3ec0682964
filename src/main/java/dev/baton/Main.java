package dev.baton;

import dev.baton.cli.CheckCommand;
import dev.baton.cli.RunCommand;
import dev.baton.cli.VersionCommand;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The `baton` command line. */
@Command(name = "baton", mixinStandardHelpOptions = true, versionProvider = Version.class,
        description = "TCP/UDP proxy daemon with zero-downtime reload and upgrade.",
        subcommands = {RunCommand.class, CheckCommand.class, VersionCommand.class})
public final class Main implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
    }

    public static CommandLine commandLine() {
        return new CommandLine(new Main());
    }

    @Override
    public void run() {
        spec.commandLine().usage(System.err);
    }
}
