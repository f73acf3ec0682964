package dev.baton.cli;

import dev.baton.Version;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * baton's command-line parser: commands with subcommands, options that take one value or none
 * ({@code -c FILE}, {@code --config FILE}, {@code --config=FILE}, {@code -cFILE}), positional
 * parameters, {@code -h/--help} and {@code -V/--version} on every command, and usage errors as one
 * line and exit status 2.
 *
 * <p>Written here rather than taken from a library: the one we used (picocli) is compiled for
 * Java 5, so the JVM can put none of its classes in baton's class-data archive, and building its
 * model of the commands by reflection took 0.4 s of every start (docs/jvm.md).
 */
public final class Cli {
    /** Usage errors (unknown option, missing parameter): the exit status, as picocli and getopt tools use. */
    public static final int USAGE = 2;
    private static final int WIDTH = 80;

    private Cli() {
    }

    /** What a command's action gets: its options by their long name, and its parameters. */
    public static final class Args {
        private final Map<String, String> options = new HashMap<>();
        private final List<String> params = new ArrayList<>();

        /** The option's value (named by its long name, e.g. "--config"), or null if not given. */
        public String option(String longName) {
            return options.get(longName);
        }

        public List<String> params() {
            return params;
        }
    }

    @FunctionalInterface
    public interface Action {
        int run(Args args) throws Exception;
    }

    private record Option(String shortName, String longName, String label, String description) {
        String names() {
            return (shortName != null ? shortName + ", " : "    ") + longName + (label != null ? " " + label : "");
        }
    }

    /** A command: built with the methods below, run with {@link #execute}. */
    public static final class Command {
        private final String name;
        private final String[] description;
        private final List<Option> options = new ArrayList<>();
        private final Map<String, Command> subcommands = new LinkedHashMap<>();
        private String paramLabel;
        private int minParams;
        private int maxParams;
        private Action action;
        private boolean hidden;

        private Command(String name, String... description) {
            this.name = name;
            this.description = description;
        }

        /**
         * An option: {@code names} is "-c, --config" or "--pid-file"; {@code label} names its value
         * ("FILE"), or is null for a flag (its value is then "true").
         */
        public Command option(String names, String label, String description) {
            String[] n = names.split(",\\s*");
            options.add(new Option(n.length > 1 ? n[0] : null, n[n.length - 1], label, description));
            return this;
        }

        /** Positional parameters: between min and max of them, shown as {@code label}. */
        public Command params(String label, int min, int max) {
            this.paramLabel = label;
            this.minParams = min;
            this.maxParams = max;
            return this;
        }

        public Command sub(Command c) {
            subcommands.put(c.name, c);
            return this;
        }

        public Command action(Action a) {
            this.action = a;
            return this;
        }

        /** Left out of the usage of its parent (still runs). */
        public Command hidden() {
            this.hidden = true;
            return this;
        }
    }

    public static Command command(String name, String... description) {
        return new Command(name, description);
    }

    /**
     * Parses {@code args} against {@code root} and runs the chosen command's action. Help and
     * version go to stdout (exit 0); a usage error goes to stderr as one line and a hint (exit 2);
     * an action that throws is reported on stderr with its stack (exit 1).
     */
    public static int execute(Command root, PrintStream out, PrintStream err, String... args) {
        Command c = root;
        String path = root.name;
        Args parsed = new Args();
        boolean onlyParams = false;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (onlyParams || a.equals("-") || !a.startsWith("-")) {
                Command sub = parsed.params.isEmpty() ? c.subcommands.get(a) : null;
                if (sub != null && !onlyParams) {
                    c = sub;
                    path += " " + sub.name;
                    parsed = new Args();
                    continue;
                }
                if (c.action == null) {
                    return usageError(err, path, "unknown command '" + a + "'");
                }
                parsed.params.add(a);
                continue;
            }
            if (a.equals("--")) {
                onlyParams = true;
                continue;
            }
            if (a.equals("-h") || a.equals("--help")) {
                out.print(usage(c, path));
                return 0;
            }
            if (a.equals("-V") || a.equals("--version")) {
                out.println("baton " + Version.get());
                return 0;
            }
            String name = a;
            String value = null;
            int eq = a.indexOf('=');
            if (a.startsWith("--") && eq > 0) {
                name = a.substring(0, eq);
                value = a.substring(eq + 1);
            } else if (!a.startsWith("--") && a.length() > 2) {
                name = a.substring(0, 2);  // -cFILE
                value = a.substring(2);
            }
            Option o = find(c, name);
            if (o == null || (o.label == null && value != null)) {
                return usageError(err, path, "unknown option '" + a + "'");
            }
            if (o.label == null) {
                value = "true";
            } else if (value == null) {
                if (i + 1 >= args.length) {
                    return usageError(err, path, "option '" + name + "' needs a value (" + o.label + ")");
                }
                value = args[++i];
            }
            if (parsed.options.put(o.longName, value) != null) {
                return usageError(err, path, "option '" + o.longName + "' given twice");
            }
        }
        if (c.action == null) {  // a group of commands, none chosen
            err.print(usage(c, path));
            return USAGE;
        }
        if (parsed.params.size() < c.minParams) {
            return usageError(err, path, "missing " + c.paramLabel);
        }
        if (parsed.params.size() > c.maxParams) {
            return usageError(err, path, "unexpected argument '" + parsed.params.get(c.maxParams) + "'");
        }
        try {
            return c.action.run(parsed);
        } catch (Exception e) {
            err.println("baton: " + e);
            e.printStackTrace(err);
            return 1;
        }
    }

    private static Option find(Command c, String name) {
        for (Option o : c.options) {
            if (name.equals(o.shortName) || name.equals(o.longName)) {
                return o;
            }
        }
        return null;
    }

    private static int usageError(PrintStream err, String path, String message) {
        err.println(path + ": " + message);
        err.println("Try '" + path + " --help'.");
        return USAGE;
    }

    /** The help text of a command. */
    static String usage(Command c, String path) {
        StringBuilder b = new StringBuilder("Usage: ").append(path).append(" [-hV]");
        for (Option o : c.options) {
            b.append(" [").append(o.shortName != null ? o.shortName : o.longName)
                    .append(o.label != null ? " " + o.label : "").append(']');
        }
        if (!c.subcommands.isEmpty()) {
            b.append(" COMMAND");
        } else if (c.paramLabel != null) {
            b.append(' ').append(c.paramLabel);
        }
        b.append('\n');
        for (String d : c.description) {
            wrap(b, "", d);
        }
        List<String[]> rows = new ArrayList<>();
        for (Option o : c.options) {
            rows.add(new String[] {o.names(), o.description});
        }
        rows.add(new String[] {"-h, --help", "Show this help and exit."});
        rows.add(new String[] {"-V, --version", "Print the version and exit."});
        table(b, "Options:", rows);
        if (!c.subcommands.isEmpty()) {
            rows = new ArrayList<>();
            for (Command s : c.subcommands.values()) {
                if (!s.hidden) {
                    rows.add(new String[] {s.name, s.description.length > 0 ? s.description[0] : ""});
                }
            }
            table(b, "Commands:", rows);
        }
        return b.toString();
    }

    private static void table(StringBuilder b, String title, List<String[]> rows) {
        int w = 0;
        for (String[] r : rows) {
            w = Math.max(w, r[0].length());
        }
        b.append(title).append('\n');
        String indent = " ".repeat(w + 4);
        for (String[] r : rows) {
            StringBuilder line = new StringBuilder("  ").append(r[0]).append(" ".repeat(w - r[0].length() + 2));
            int start = b.length();
            wrap(b, indent, r[1]);
            b.replace(start, start + indent.length(), line.toString());
        }
    }

    /** Appends {@code text} word-wrapped at {@link #WIDTH} columns, every line starting with {@code indent}. */
    private static void wrap(StringBuilder b, String indent, String text) {
        int col = -1;
        for (String word : text.split(" ")) {
            if (col < 0 || col + 1 + word.length() > WIDTH) {
                if (col >= 0) {
                    b.append('\n');
                }
                b.append(indent).append(word);
                col = indent.length() + word.length();
            } else {
                b.append(' ').append(word);
                col += 1 + word.length();
            }
        }
        b.append('\n');
    }
}
