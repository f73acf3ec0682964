package dev.baton.testkit;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Runs target/baton/bin/baton (system property baton.home) as a child process. */
public final class Launcher {
    private Launcher() {
    }

    public static Path bin() {
        String home = System.getProperty("baton.home", "target/baton");
        return Path.of(home, "bin", "baton");
    }

    public record Result(int exit, String output) {
    }

    public static ProcessBuilder builder(Path outFile, String... args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(bin().toString());
        cmd.addAll(List.of(args));
        return new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(outFile.toFile());
    }

    /** Runs to completion (at most 60s) and returns exit code and stdout+stderr. */
    public static Result run(Path work, String... args) throws IOException, InterruptedException {
        Path out = Files.createTempFile(work, "out", ".txt");
        Process p = builder(out, args).start();
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("baton " + String.join(" ", args) + " did not finish");
        }
        return new Result(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8));
    }
}
