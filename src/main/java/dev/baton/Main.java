package dev.baton;

import dev.baton.cli.CdsTrainingCommand;
import dev.baton.cli.CheckCommand;
import dev.baton.cli.Cli;
import dev.baton.cli.ConfigOption;
import dev.baton.cli.ControlCommands;
import dev.baton.cli.RunCommand;

import java.nio.file.Path;
import java.util.List;

/** The `baton` command line. */
public final class Main {
    private static volatile List<String> arguments = List.of();

    private Main() {
    }

    public static void main(String[] args) {
        arguments = List.of(args);
        System.exit(execute(args));
    }

    /** Runs one command line in this process; returns its exit status. */
    public static int execute(String... args) {
        return Cli.execute(commands(), System.out, System.err, args);
    }

    /** The command line this process was started with (an upgrade starts the successor with it). */
    public static List<String> arguments() {
        return arguments;
    }

    /** Every command, its options and what runs it. */
    public static Cli.Command commands() {
        return Cli.command("baton", "TCP/UDP proxy daemon with zero-downtime reload and upgrade.")
                .sub(config(Cli.command("run", "Run in the foreground.",
                        "SIGHUP reloads the configuration in place; SIGUSR2 upgrades: a new process started with the "
                                + "same command line takes over every socket and connection; SIGTERM/SIGINT drain and stop."))
                        .option("--pid-file", "FILE",
                                "Keep the pid of the serving process here (after an upgrade: the successor's).")
                        .action(a -> new RunCommand(ConfigOption.path(a), path(a.option("--pid-file"))).call()))
                .sub(config(Cli.command("check", "Validate the configuration and the runtime mappings of its "
                        + "state-dir: every error as FILE:LINE: key: message; exit 1 on any."))
                        .action(a -> CheckCommand.run(ConfigOption.path(a))))
                .sub(control("reload", "Re-read the configuration in the running daemon (like SIGHUP) and report "
                        + "the outcome."))
                .sub(control("upgrade", "Hand every socket and connection to a new process (like SIGUSR2); exit 1 "
                        + "if it failed."))
                .sub(control("status", "Show the running daemon's state."))
                .sub(Cli.command("map", "Runtime port mappings: added to and removed from the running daemon "
                                + "without touching other traffic, and saved in its state-dir so they survive reloads, "
                                + "upgrades and restarts.",
                        "Exit 0 on success, 1 if the daemon refused (the reason on one line), 2 if it cannot be reached.")
                        .sub(config(Cli.command("add", "Map LISTEN to UPSTREAM: baton map add tcp 0.0.0.0:8080 "
                                        + "172.17.0.2:80 --name web",
                                "Port ranges of equal length map port by port: 0.0.0.0:8000-8099 "
                                        + "172.17.0.2:9000-9099. IPv6 in brackets: [::]:8080. Several addresses: "
                                        + "comma-separated."))
                                .option("--name", "NAME",
                                        "Name of the mapping (default: from protocol, address and port, e.g. tcp-8080).")
                                .params("tcp|udp LISTEN UPSTREAM[,UPSTREAM...]", 3, 3)
                                .action(a -> {
                                    List<String> words = new java.util.ArrayList<>(a.params());
                                    if (a.option("--name") != null) {
                                        words.add(a.option("--name"));
                                    }
                                    return ControlCommands.send(ConfigOption.path(a), "map add", words);
                                }))
                        .sub(config(Cli.command("rm", "Remove a runtime mapping by name (a range as a whole), or by "
                                + "protocol and listen address. Its open connections continue until they end."))
                                .params("NAME | tcp|udp LISTEN", 1, 2)
                                .action(a -> ControlCommands.send(ConfigOption.path(a), "map rm", a.params())))
                        .sub(config(Cli.command("ls", "List every proxy: name, protocol, listen, upstreams, origin "
                                + "(config file or runtime)."))
                                .action(a -> ControlCommands.send(ConfigOption.path(a), "map ls", List.of()))))
                .sub(Cli.command("version", "Print the version.").action(a -> {
                    System.out.println("baton " + Version.get());
                    return 0;
                }))
                .sub(Cli.command("cds-training", "Start, relay one TCP connection and one UDP datagram, stop (for "
                        + "the class-data archive).").hidden().action(a -> new CdsTrainingCommand().call()));
    }

    private static Cli.Command config(Cli.Command c) {
        return c.option("-c, --config", "FILE", ConfigOption.DESCRIPTION);
    }

    private static Cli.Command control(String name, String description) {
        return config(Cli.command(name, description)).action(a -> ControlCommands.send(ConfigOption.path(a), name, List.of()));
    }

    private static Path path(String s) {
        return s == null ? null : Path.of(s);
    }
}
