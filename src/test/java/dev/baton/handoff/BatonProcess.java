package dev.baton.handoff;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** The real launcher (target/baton/bin/baton) run as a separate process, followed across upgrades by its pid file. */
public final class BatonProcess implements AutoCloseable {
    final Path dir;
    public final Path config;
    final Path pidFile;
    final Path log;
    final Path launcher;
    private final Process first;

    public BatonProcess(Path launcher, Path dir, String configText) throws Exception {
        this(launcher, dir, configText, java.util.Map.of());
    }

    /** As above, with {@code env} added to the launcher's environment (and so its successors'). */
    public BatonProcess(Path launcher, Path dir, String configText, java.util.Map<String, String> env) throws Exception {
        this.launcher = launcher;
        this.dir = dir;
        this.config = dir.resolve("baton.conf");
        this.pidFile = dir.resolve("baton.pid");
        this.log = dir.resolve("baton.log");
        Files.writeString(config, configText);
        ProcessBuilder pb = new ProcessBuilder(launcher.toString(), "run", "-c", config.toString(),
                "--pid-file", pidFile.toString());
        pb.environment().putAll(env);
        pb.redirectErrorStream(true).redirectOutput(log.toFile());
        first = pb.start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (pid() != first.pid()) {
            if (!first.isAlive()) {
                throw new IllegalStateException("baton exited " + first.exitValue() + ":\n" + logText());
            }
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("baton did not start:\n" + logText());
            }
            Thread.sleep(20);
        }
    }

    public static Path distribution() {
        String home = System.getProperty("baton.home", "target/baton");
        return Path.of(home).toAbsolutePath();
    }

    public long pid() {
        try {
            return Long.parseLong(Files.readString(pidFile).trim());
        } catch (IOException | NumberFormatException e) {
            return -1;
        }
    }

    public String logText() {
        try {
            return Files.readString(log);
        } catch (IOException e) {
            return "(no log)";
        }
    }

    /** Runs `baton ARGS -c config`; returns exit code and output. */
    public Result cli(String... args) throws Exception {
        List<String> cmd = new ArrayList<>();
        cmd.add(distribution().resolve("bin/baton").toString());
        cmd.addAll(List.of(args));
        cmd.add("-c");
        cmd.add(config.toString());
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IllegalStateException("baton " + String.join(" ", args) + " hung");
        }
        return new Result(p.exitValue(), out);
    }

    public record Result(int code, String output) {
    }

    public static void signal(long pid, String signal) throws Exception {
        new ProcessBuilder("kill", "-" + signal, Long.toString(pid)).inheritIO().start().waitFor();
    }

    /** Running, not a zombie: a successor outlives its parent, so no one may reap it at once. */
    public static boolean alive(long pid) {
        try {
            String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
            return stat.charAt(stat.lastIndexOf(')') + 2) != 'Z';
        } catch (IOException e) {
            return false;
        }
    }

    /** Waits until the process is gone; returns how long it took in ms, or -1 on timeout. */
    public static long awaitExit(long pid, long timeoutMs) throws InterruptedException {
        long start = System.nanoTime();
        while (alive(pid)) {
            if (System.nanoTime() - start > TimeUnit.MILLISECONDS.toNanos(timeoutMs)) {
                return -1;
            }
            Thread.sleep(5);
        }
        return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
    }

    /** Every baton process whose command line names this test's config (never more than two may exist). */
    /**
     * baton daemons (JVMs) running this configuration. The launcher script's own moments, and
     * the subshells it forks (same arguments, before exec), are not daemons and are not counted.
     */
    long processCount() {
        return ProcessHandle.allProcesses()
                .filter(h -> h.info().command().map(c -> c.endsWith("/java")).orElse(false))
                .filter(h -> h.info().arguments().map(a -> List.of(a).contains(config.toString())).orElse(false))
                .filter(h -> h.info().arguments().map(a -> List.of(a).contains("run")).orElse(false))
                .count();
    }

    @Override
    public void close() throws Exception {
        long pid = pid();
        if (pid > 0 && alive(pid)) {
            signal(pid, "TERM");
            if (awaitExit(pid, 15000) < 0) {
                signal(pid, "KILL");
            }
        }
        first.destroyForcibly();
        ProcessHandle.allProcesses()
                .filter(h -> h.info().arguments().map(a -> List.of(a).contains(config.toString())).orElse(false))
                .forEach(ProcessHandle::destroyForcibly);
    }
}
