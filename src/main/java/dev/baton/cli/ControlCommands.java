package dev.baton.cli;

import dev.baton.control.ControlClient;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/** Commands that talk to the running daemon over its control socket (reload, upgrade, status, map). */
public final class ControlCommands {
    private ControlCommands() {
    }

    /**
     * Sends {@code command} followed by {@code words} (each must be one word) to the daemon that
     * {@code config} configures, and prints its answer: exit 0, 1 if it refused, 2 if it cannot be
     * reached.
     */
    public static int send(Path config, String command, List<String> words) {
        for (String w : words) {
            if (w.isEmpty() || w.chars().anyMatch(Character::isWhitespace)) {
                System.err.println("baton: '" + w + "': an argument may not be empty or contain spaces");
                return 1;
            }
        }
        Path socket = ControlClient.socketFor(config);
        String answer;
        try {
            answer = ControlClient.send(socket, words.isEmpty() ? command : command + " " + String.join(" ", words));
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
