package dev.baton.config;

import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigIncludeContext;
import com.typesafe.config.ConfigIncluder;
import com.typesafe.config.ConfigIncluderFile;
import com.typesafe.config.ConfigObject;
import com.typesafe.config.ConfigParseOptions;
import com.typesafe.config.ConfigParseable;

import java.io.File;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * HOCON has no directory include; this adds one: {@code include "conf.d/*.conf"} merges every
 * matching file (sorted by name, later files win) relative to the including file. A pattern
 * that matches nothing is not an error, so an empty conf.d/ is fine. Names without a wildcard
 * are handled exactly as HOCON defines.
 */
final class GlobIncluder implements ConfigIncluder, ConfigIncluderFile {
    private final ConfigIncluder fallback;

    GlobIncluder() {
        this(ConfigParseOptions.defaults().getIncluder());
    }

    private GlobIncluder(ConfigIncluder fallback) {
        this.fallback = fallback;
    }

    @Override
    public ConfigIncluder withFallback(ConfigIncluder fallback) {
        return this.fallback == fallback ? this : new GlobIncluder(fallback);
    }

    @Override
    public ConfigObject include(ConfigIncludeContext context, String what) {
        if (isGlob(what)) {
            return includeGlob(context, what);
        }
        return fallback.include(context, what);
    }

    @Override
    public ConfigObject includeFile(ConfigIncludeContext context, File what) {
        if (isGlob(what.getPath())) {
            return includeGlob(context, what.getPath());
        }
        if (fallback instanceof ConfigIncluderFile f) {
            return f.includeFile(context, what);
        }
        return ConfigFactory.parseFile(what, context.parseOptions()).root();
    }

    private static boolean isGlob(String what) {
        return what.indexOf('*') >= 0 || what.indexOf('?') >= 0;
    }

    private static ConfigObject includeGlob(ConfigIncludeContext context, String pattern) {
        Path full = Path.of(pattern);
        if (!full.isAbsolute()) {
            // relativeTo() only finds files that exist (else it falls back to a classpath
            // resource), so resolve the pattern's directory, not the pattern itself.
            Path rel = Path.of(pattern);
            String parent = rel.getParent() != null ? rel.getParent().toString() : ".";
            ConfigParseable sibling = context.relativeTo(parent);
            String name = sibling != null ? sibling.origin().filename() : null;
            full = name != null ? Path.of(name).resolve(rel.getFileName()) : rel.toAbsolutePath();
        }
        Path dir = full.getParent();
        String glob = full.getFileName().toString();
        List<Path> matches = new ArrayList<>();
        if (dir != null && Files.isDirectory(dir)) {
            try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, glob)) {
                for (Path p : ds) {
                    if (Files.isRegularFile(p)) {
                        matches.add(p);
                    }
                }
            } catch (IOException e) {
                throw new com.typesafe.config.ConfigException.Generic("cannot list " + dir + ": " + e.getMessage());
            }
        }
        Collections.sort(matches);
        ConfigParseOptions options = context.parseOptions().setAllowMissing(false);
        com.typesafe.config.Config merged = ConfigFactory.empty();
        for (Path p : matches) {
            merged = ConfigFactory.parseFile(p.toFile(), options).withFallback(merged);
        }
        return merged.root();
    }
}
