package dev.baton.os;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Reads kernel settings that change how baton's own settings take effect. */
public final class Sysctl {
    private Sysctl() {
    }

    /** net.core.somaxconn, the cap the kernel silently puts on every listen backlog; -1 if unknown. */
    public static int somaxconn() {
        try {
            // Not Files.readString: procfs reports size 0 and the JDK then reads a single byte.
            try (var in = Files.newInputStream(Path.of("/proc/sys/net/core/somaxconn"))) {
                return Integer.parseInt(new String(in.readAllBytes(), java.nio.charset.StandardCharsets.US_ASCII).trim());
            }
        } catch (IOException | NumberFormatException e) {
            return -1;
        }
    }
}
