package dev.baton.os;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Signals a parent told this process to ignore. The JVM keeps an inherited "ignore" for HUP, INT
 * and TERM (they are its shutdown signals) and then installs no handler for them: baton started
 * under {@code nohup}, or by a shell or supervisor that ignores SIGHUP, would never reload.
 */
public final class SignalDisposition {
    private SignalDisposition() {
    }

    /** Whether signal {@code number} is ignored now (SigIgn in /proc/self/status); false if unknown. */
    public static boolean ignored(int number) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("SigIgn:")) {
                    long mask = Long.parseUnsignedLong(line.substring(7).trim(), 16);
                    return (mask & (1L << (number - 1))) != 0;
                }
            }
        } catch (IOException | NumberFormatException e) {
            // not Linux, or no procfs: assume the default
        }
        return false;
    }

    /** Puts signal {@code number} back to its default action (SIG_DFL); false if that failed. */
    public static boolean reset(int number) {
        return Syscalls.get().signal(number, 0) != -1;
    }
}
