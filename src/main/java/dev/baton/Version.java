package dev.baton;

import picocli.CommandLine;

/** The version baton was built as (from the jar manifest). */
public final class Version implements CommandLine.IVersionProvider {
    public static String get() {
        String v = Version.class.getPackage().getImplementationVersion();
        return v != null ? v : "dev";
    }

    @Override
    public String[] getVersion() {
        return new String[] {"baton " + get()};
    }
}
