package dev.baton.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.util.List;

/** `baton map add|rm|ls`: runtime port mappings in the running daemon, saved in its state directory. */
@Command(name = "map", mixinStandardHelpOptions = true,
        description = {"Runtime port mappings: added to and removed from the running daemon without touching other "
                + "traffic, and saved in its state-dir so they survive reloads, upgrades and restarts.",
                "Exit 0 on success, 1 if the daemon refused (the reason on one line), 2 if it cannot be reached."},
        subcommands = {MapCommand.Add.class, MapCommand.Rm.class, MapCommand.Ls.class})
public final class MapCommand implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.err);
    }

    @Command(name = "add", mixinStandardHelpOptions = true,
            description = {"Map LISTEN to UPSTREAM: baton map add tcp 0.0.0.0:8080 172.17.0.2:80 --name web",
                    "Port ranges of equal length map port by port: 0.0.0.0:8000-8099 172.17.0.2:9000-9099. "
                            + "IPv6 in brackets: [::]:8080. Several addresses: comma-separated."})
    public static final class Add extends ControlCommands.Base {
        @Parameters(index = "0", paramLabel = "tcp|udp")
        String protocol;

        @Parameters(index = "1", paramLabel = "LISTEN")
        String listen;

        @Parameters(index = "2", paramLabel = "UPSTREAM[,UPSTREAM...]")
        String upstreams;

        @Option(names = "--name", paramLabel = "NAME",
                description = "Name of the mapping (default: from protocol, address and port, e.g. tcp-8080).")
        String name;

        @Override
        String command() {
            return "map add " + protocol + " " + listen + " " + upstreams + (name != null ? " " + name : "");
        }

        @Override
        List<String> words() {
            return name == null ? List.of(protocol, listen, upstreams)
                    : List.of(protocol, listen, upstreams, name);
        }
    }

    @Command(name = "rm", mixinStandardHelpOptions = true,
            description = "Remove a runtime mapping by name (a range as a whole), or by protocol and listen address. "
                    + "Its open connections continue until they end.")
    public static final class Rm extends ControlCommands.Base {
        @Parameters(arity = "1..2", paramLabel = "NAME | tcp|udp LISTEN")
        List<String> what;

        @Override
        String command() {
            return "map rm " + String.join(" ", what);
        }

        @Override
        List<String> words() {
            return what;
        }
    }

    @Command(name = "ls", mixinStandardHelpOptions = true,
            description = "List every proxy: name, protocol, listen, upstreams, origin (config file or runtime).")
    public static final class Ls extends ControlCommands.Base {
        @Override
        String command() {
            return "map ls";
        }
    }
}
