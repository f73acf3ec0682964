package dev.baton.config;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigObject;
import com.typesafe.config.ConfigRenderOptions;
import com.typesafe.config.ConfigUtil;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * The runtime port mappings (`baton map add|rm`), kept in STATE-DIR/mappings.conf: proxy blocks
 * like those of {@code baton.proxies}, one mapping a line, sorted by name.
 *
 * @param file        the mappings file
 * @param entries     mapping name -> its proxy block, as written
 * @param proxies     proxy name -> the mapping it came from (a range is one proxy per port)
 * @param configNames the proxy names of the configuration file itself (before port ranges)
 * @param base        the configuration's global settings, which mappings inherit
 */
public record RuntimeMappings(Path file, Map<String, ConfigObject> entries, Map<String, String> proxies,
                              Set<String> configNames, Config base) {
    public static final String FILE_NAME = "mappings.conf";

    private static final String HEADER = "# Runtime port mappings, written by `baton map add|rm`: one proxy block a line,\n"
            + "# with the keys of baton.proxies. Read at start, on reload and by an upgrade's successor.\n";

    public RuntimeMappings {
        entries = Collections.unmodifiableMap(new TreeMap<>(entries));
        proxies = Collections.unmodifiableMap(new LinkedHashMap<>(proxies));
        configNames = Set.copyOf(configNames);
    }

    /** The file's text for these mappings (what {@link #write} stores and the loader reads back). */
    public static String render(Map<String, ConfigObject> entries) {
        StringBuilder b = new StringBuilder(HEADER).append("baton.proxies {\n");
        for (Map.Entry<String, ConfigObject> e : new TreeMap<>(entries).entrySet()) {
            b.append("  ").append(ConfigUtil.quoteString(e.getKey())).append(" { ")
                    .append(e.getValue().render(ConfigRenderOptions.concise().setJson(false))).append(" }\n");
        }
        return b.append("}\n").toString();
    }

    /**
     * Replaces the file with {@code text} atomically: a crash leaves the old file or the new one,
     * never a mix (temporary file, fsync, rename, fsync of the directory). Mode 0640.
     */
    public static void write(Path file, String text) throws IOException {
        Path dir = file.toAbsolutePath().getParent();
        Files.createDirectories(dir);
        Path tmp = dir.resolve("." + file.getFileName() + "." + ProcessHandle.current().pid() + ".tmp");
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    StandardOpenOption.TRUNCATE_EXISTING)) {
                ByteBuffer buf = ByteBuffer.wrap(text.getBytes(StandardCharsets.UTF_8));
                while (buf.hasRemaining()) {
                    ch.write(buf);
                }
                ch.force(true);
            }
            Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rw-r-----"));
            Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } finally {
            Files.deleteIfExists(tmp);
        }
        try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
            d.force(true); // the rename itself
        } catch (IOException e) {
            // not every file system lets a directory be opened; the rename is done either way
        }
    }
}
