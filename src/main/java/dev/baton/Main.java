package dev.baton;

import dev.baton.cli.CdsTrainingCommand;
import dev.baton.cli.CheckCommand;
import dev.baton.cli.ControlCommands;
import dev.baton.cli.MapCommand;
import dev.baton.cli.RunCommand;
import dev.baton.cli.VersionCommand;
import java.util.List;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The `baton` command line. */
@Command(name = "baton", mixinStandardHelpOptions = true, versionProvider = Version.class,
        description = "TCP/UDP proxy daemon with zero-downtime reload and upgrade.",
        subcommands = {RunCommand.class, CheckCommand.class, ControlCommands.Reload.class,
                ControlCommands.Upgrade.class, ControlCommands.Status.class, MapCommand.class, VersionCommand.class,
                CdsTrainingCommand.class})
public final class Main implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    private static volatile List<String> arguments = List.of();

    public static void main(String[] args) {
        arguments = List.of(args);
        System.exit(commandLine().execute(args));
    }

    /** The command line this process was started with (an upgrade starts the successor with it). */
    public static List<String> arguments() {
        return arguments;
    }

    public static CommandLine commandLine() {
        return new CommandLine(new Main());
    }

    @Override
    public void run() {
        spec.commandLine().usage(System.err);
    }
}
