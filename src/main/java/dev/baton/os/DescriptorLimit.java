package dev.baton.os;

import dev.baton.metrics.Throttle;
import io.netty.channel.unix.Errors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Running out of file descriptors (EMFILE, ENFILE): recognised wherever a socket could not be
 * made, and reported for the whole process at most once every 10 s, with how often it happened,
 * instead of once per connection.
 */
public final class DescriptorLimit {
    private static final Logger log = LoggerFactory.getLogger(DescriptorLimit.class);
    private static final int EMFILE = 24;
    private static final int ENFILE = 23;
    private static final Throttle reports = new Throttle();
    /** Read while descriptors are still to be had. */
    private static final String LIMIT = limit();

    private DescriptorLimit() {
    }

    /** Reads the limit now, while descriptors are still to be had (call at start). */
    public static String softLimit() {
        return LIMIT;
    }

    /** True if {@code cause}, or an exception it wraps, is "too many open files" (process or system). */
    public static boolean reached(Throwable cause) {
        for (Throwable t = cause; t != null; t = t.getCause() == t ? null : t.getCause()) {
            if (t instanceof Errors.NativeIoException n
                    && (n.expectedErr() == -EMFILE || n.expectedErr() == -ENFILE)) {
                return true;
            }
            String m = t.getMessage();
            if (m != null && m.contains("Too many open files")) { // nio's SocketException, ENFILE's "... in system"
                return true;
            }
        }
        return false;
    }

    /** Counts one thing that failed for want of descriptors; logs {@code what} at most every 10 s. */
    public static void report(String what) {
        if (reports.pass()) {
            long times = reports.takeHeldBack() + 1;
            log.warn("out of file descriptors (limit {}): {}{}; raise LimitNOFILE in the unit (or ulimit -n)", LIMIT,
                    what, times == 1 ? "" : " (" + times + " failures since the last such line)");
        }
    }

    /** The soft limit on open files, from /proc/self/limits. */
    private static String limit() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/limits"))) {
                if (line.startsWith("Max open files")) {
                    return line.substring("Max open files".length()).trim().split("\\s+")[0];
                }
            }
        } catch (IOException e) {
            // below
        }
        return "?";
    }
}
