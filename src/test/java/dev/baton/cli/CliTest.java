package dev.baton.cli;

import dev.baton.Main;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CliTest {
    /** What one run of the parser did: exit status and output (the action's arguments go to {@link #calls}). */
    private record Run(int exit, String out, String err) {
    }

    private static Run run(Cli.Command root, String... argv) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int exit = Cli.execute(root, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8), argv);
        return new Run(exit, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    private static final List<Cli.Args> calls = new ArrayList<>();

    private static Cli.Command tree() {
        calls.clear();
        Cli.Action record = a -> {
            calls.add(a);
            return 7;
        };
        return Cli.command("baton", "Root.")
                .sub(Cli.command("run", "Run it.").option("-c, --config", "FILE", "The file.")
                        .option("--pid-file", "FILE", "Pid here.").action(record))
                .sub(Cli.command("map", "Maps.")
                        .sub(Cli.command("add", "Add one.").option("--name", "NAME", "Its name.")
                                .params("PROTO LISTEN UPSTREAM", 3, 3).action(record))
                        .sub(Cli.command("rm", "Remove one.").params("NAME | PROTO LISTEN", 1, 2).action(record)))
                .sub(Cli.command("quiet", "Flag.").option("-q, --quiet", null, "Say less.").action(record))
                .sub(Cli.command("secret", "Hidden.").hidden().action(record));
    }

    @Test
    void optionsInEverySpelling() {
        for (String[] argv : new String[][] {
                {"run", "-c", "a.conf", "--pid-file", "p"},
                {"run", "--config", "a.conf", "--pid-file=p"},
                {"run", "--config=a.conf", "--pid-file", "p"},
                {"run", "-ca.conf", "--pid-file", "p"},
                {"run", "--pid-file", "p", "-c", "a.conf"}}) {
            Run r = run(tree(), argv);
            assertEquals(7, r.exit, String.join(" ", argv) + ": " + r.err);
            assertEquals(1, calls.size());
            assertEquals("a.conf", calls.get(0).option("--config"));
            assertEquals("p", calls.get(0).option("--pid-file"));
            assertEquals(List.of(), calls.get(0).params());
        }
        Run r = run(tree(), "run");
        assertEquals(7, r.exit);
        assertEquals(null, calls.get(0).option("--config"));
        run(tree(), "quiet", "-q");
        assertEquals("true", calls.get(0).option("--quiet"));
    }

    @Test
    void subcommandsAndParameters() {
        Run r = run(tree(), "map", "add", "tcp", "0.0.0.0:80", "10.0.0.2:80", "--name", "web");
        assertEquals(7, r.exit, r.err);
        assertEquals(List.of("tcp", "0.0.0.0:80", "10.0.0.2:80"), calls.get(0).params());
        assertEquals("web", calls.get(0).option("--name"));
        // a parameter that looks like a command name is a parameter once parameters began
        r = run(tree(), "map", "rm", "tcp", "add");
        assertEquals(7, r.exit, r.err);
        assertEquals(List.of("tcp", "add"), calls.get(0).params());
        // after --, an argument that starts with a dash is a parameter
        r = run(tree(), "map", "rm", "--", "-odd");
        assertEquals(7, r.exit, r.err);
        assertEquals(List.of("-odd"), calls.get(0).params());
    }

    @Test
    void usageErrorsAreOneLineAndExitTwo() {
        String[][] cases = {
                {"run --frob", "baton run: unknown option '--frob'"},
                {"run -c", "baton run: option '-c' needs a value (FILE)"},
                {"run -c a -c b", "baton run: option '--config' given twice"},
                {"quiet --quiet=yes", "baton quiet: unknown option '--quiet=yes'"},
                {"map add tcp 0.0.0.0:80", "baton map add: missing PROTO LISTEN UPSTREAM"},
                {"map rm a b c", "baton map rm: unexpected argument 'c'"},
                {"frobnicate", "baton: unknown command 'frobnicate'"},
                {"run extra", "baton run: unexpected argument 'extra'"}};
        for (String[] c : cases) {
            Run r = run(tree(), c[0].split(" "));
            assertEquals(Cli.USAGE, r.exit, c[0]);
            assertTrue(calls.isEmpty(), c[0] + ": the action must not run");
            String[] lines = r.err.split("\n");
            assertEquals(c[1], lines[0], c[0]);
            assertTrue(lines[1].startsWith("Try 'baton"), r.err);
            assertEquals("", r.out);
        }
    }

    @Test
    void helpAndVersion() {
        Run r = run(tree(), "--help");
        assertEquals(0, r.exit);
        assertTrue(r.out.startsWith("Usage: baton [-hV] COMMAND\nRoot.\n"), r.out);
        assertTrue(r.out.contains("\n  run "), r.out);
        assertTrue(r.out.contains("\n  map "), r.out);
        assertTrue(!r.out.contains("secret"), "hidden commands stay out of the usage: " + r.out);
        r = run(tree(), "run", "-h");
        assertEquals(0, r.exit);
        assertTrue(r.out.startsWith("Usage: baton run [-hV] [-c FILE] [--pid-file FILE]\nRun it.\n"), r.out);
        assertTrue(r.out.contains("\n  -c, --config FILE    The file.\n"), r.out);
        assertTrue(r.out.contains("\n      --pid-file FILE  Pid here.\n"), r.out);
        assertTrue(calls.isEmpty());
        r = run(tree(), "map", "add", "--version");
        assertEquals(0, r.exit);
        assertTrue(r.out.startsWith("baton "), r.out);
        // a group without its command: the usage on stderr, a usage error
        r = run(tree(), "map");
        assertEquals(Cli.USAGE, r.exit);
        assertTrue(r.err.startsWith("Usage: baton map [-hV] COMMAND"), r.err);
        r = run(tree());
        assertEquals(Cli.USAGE, r.exit);
    }

    @Test
    void longDescriptionsWrapAtEightyColumns() {
        String words = "word ".repeat(60).trim();
        Cli.Command c = Cli.command("baton", words).sub(Cli.command("x", "X.").option("--long", "V", words)
                .action(a -> 0));
        for (String text : new String[] {run(c, "--help").out, run(c, "x", "--help").out}) {
            for (String line : text.split("\n")) {
                assertTrue(line.length() <= 80, "too long: " + line);
            }
        }
        String help = run(c, "x", "--help").out;
        assertTrue(help.contains("\n      --long V   word word"), help);
        assertTrue(help.contains("\n                 word word"), "continuation lines indent under the text: " + help);
    }

    @Test
    void anActionThatThrowsExitsOneWithTheError() {
        Cli.Command c = Cli.command("baton").sub(Cli.command("boom", "B.").action(a -> {
            throw new IllegalStateException("it broke");
        }));
        Run r = run(c, "boom");
        assertEquals(1, r.exit);
        assertTrue(r.err.startsWith("baton: java.lang.IllegalStateException: it broke\n"), r.err);
    }

    @Test
    void batonsOwnCommandsParse() {
        // every command of the real tree has help, and wrong use is a usage error before anything runs
        for (String cmd : new String[] {"run", "check", "reload", "upgrade", "status", "map add", "map rm", "map ls",
                "version"}) {
            List<String> argv = new ArrayList<>(List.of(cmd.split(" ")));
            argv.add("--help");
            Run r = run(Main.commands(), argv.toArray(String[]::new));
            assertEquals(0, r.exit, cmd + ": " + r.err);
            assertTrue(r.out.startsWith("Usage: baton " + cmd + " [-hV]"), r.out);
        }
        Run r = run(Main.commands(), "map", "add", "tcp");
        assertEquals(Cli.USAGE, r.exit);
        assertTrue(r.err.startsWith("baton map add: missing tcp|udp LISTEN UPSTREAM[,UPSTREAM...]"), r.err);
        r = run(Main.commands(), "--help");
        assertTrue(!r.out.contains("cds-training"), r.out);
    }
}
