package dev.baton.cli;

import dev.baton.control.ControlClient;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

/** Commands that talk to the running daemon over its control socket. */
public final class ControlCommands {
    private ControlCommands() {
    }

    abstract static class Base implements Callable<Integer> {
        @Mixin
        ConfigOption config;

        abstract String command();

        /** The arguments that go into the command line; each must be one word. */
        List<String> words() {
            return List.of();
        }

        @Override
        public Integer call() {
            for (String w : words()) {
                if (w.isEmpty() || w.chars().anyMatch(Character::isWhitespace)) {
                    System.err.println("baton: '" + w + "': an argument may not be empty or contain spaces");
                    return 1;
                }
            }
            Path socket = ControlClient.socketFor(config.path());
            String answer;
            try {
                answer = ControlClient.send(socket, command());
            } catch (IOException e) {
                System.err.println("baton: cannot reach the daemon at " + socket + ": " + e.getMessage());
                return 2;
            }
            if (answer.startsWith("FAIL")) {
                System.err.print(answer.substring(5));
                return 1;
            }
            System.out.print(answer.startsWith("OK ") ? answer.substring(3) : answer);
            return 0;
        }
    }

    @Command(name = "reload", mixinStandardHelpOptions = true,
            description = "Re-read the configuration in the running daemon (like SIGHUP) and report the outcome.")
    public static final class Reload extends Base {
        @Override
        String command() {
            return "reload";
        }
    }

    @Command(name = "upgrade", mixinStandardHelpOptions = true,
            description = "Hand every socket and connection to a new process (like SIGUSR2); exit 1 if it failed.")
    public static final class Upgrade extends Base {
        @Override
        String command() {
            return "upgrade";
        }
    }

    @Command(name = "status", mixinStandardHelpOptions = true, description = "Show the running daemon's state.")
    public static final class Status extends Base {
        @Override
        String command() {
            return "status";
        }
    }
}
