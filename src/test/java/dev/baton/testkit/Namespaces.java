package dev.baton.testkit;

import dev.baton.os.NetNamespace;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.Callable;
import java.util.stream.Stream;

/**
 * Real network namespaces and links for a test, made with iproute2 (`ip netns add`, bridges, veth
 * pairs) the way docker wires its containers. Every name starts with "btn" and a random tag, so
 * concurrent runs do not meet; {@link #close} removes all of them, and a new instance first removes
 * what a crashed run left behind (its marker file names a pid that is gone).
 */
public final class Namespaces implements AutoCloseable {
    private static final Path MARKERS = Path.of("/run/baton-test-netns");

    private final String tag;

    /** Null when this machine can run namespace tests, else why not (for an assumption). */
    public static String unavailable() {
        if (!"root".equals(System.getProperty("user.name"))) {
            return "network namespace tests need root (they run `ip netns add`)";
        }
        try {
            Process p = new ProcessBuilder("ip", "-V").redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            if (!p.waitFor(10, TimeUnit.SECONDS) || p.exitValue() != 0) {
                return "`ip -V` failed: iproute2 is needed";
            }
        } catch (IOException | InterruptedException e) {
            return "no `ip` command (install iproute2)";
        }
        return null;
    }

    public Namespaces() throws IOException {
        removeLeftovers();
        tag = "btn" + String.format("%04x", ThreadLocalRandom.current().nextInt(0x10000));
        Files.createDirectories(MARKERS);
        Files.writeString(MARKERS.resolve(tag), Long.toString(ProcessHandle.current().pid()));
    }

    /** This run's name prefix, e.g. "btn3f2a": every namespace and link it makes starts with it. */
    public String tag() {
        return tag;
    }

    /** A new namespace TAG+suffix with its loopback up; returns its name. */
    public String add(String suffix) throws IOException {
        String name = tag + suffix;
        ip("netns", "add", name);
        ip("-n", name, "link", "set", "lo", "up");
        return name;
    }

    public static Path path(String namespace) {
        return Path.of("/run/netns", namespace);
    }

    public static NetNamespace open(String namespace) throws IOException {
        return NetNamespace.open(path(namespace));
    }

    /** A bridge in the host namespace with this address (e.g. "10.213.7.1/24"), up. */
    public String bridge(String suffix, String cidr) throws IOException {
        String name = tag + suffix;
        ip("link", "add", name, "type", "bridge");
        ip("addr", "add", cidr, "dev", name);
        ip("link", "set", name, "up");
        return name;
    }

    /**
     * A veth pair: one end (TAG+suffix) on the bridge in the host, the other inside the namespace
     * as eth0 with this address and a default route via the gateway — a container on docker0.
     */
    public void plug(String namespace, String bridge, String suffix, String cidr, String gateway) throws IOException {
        String host = tag + suffix;
        String peer = tag + suffix + "p";
        ip("link", "add", host, "type", "veth", "peer", "name", peer);
        ip("link", "set", peer, "netns", namespace);
        ip("-n", namespace, "link", "set", peer, "name", "eth0");
        ip("-n", namespace, "addr", "add", cidr, "dev", "eth0");
        ip("-n", namespace, "link", "set", "eth0", "up");
        ip("-n", namespace, "route", "add", "default", "via", gateway);
        ip("link", "set", host, "master", bridge);
        ip("link", "set", host, "up");
    }

    /** Runs body with the calling thread inside the namespace (sockets it makes stay there). */
    @SuppressWarnings("unchecked")
    public static <T> T in(String namespace, Callable<T> body) throws Exception {
        Object[] result = new Object[1];
        Exception[] failure = new Exception[1];
        open(namespace).call(() -> {
            try {
                result[0] = body.call();
            } catch (Exception e) {
                failure[0] = e;
            }
            return null;
        });
        if (failure[0] != null) {
            throw failure[0];
        }
        return (T) result[0];
    }

    /** Runs `ip ARGS`; fails with its output if it exits non-zero. */
    public static String ip(String... args) throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add("ip");
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        try {
            if (!p.waitFor(30, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IOException(String.join(" ", cmd) + ": timed out");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException(String.join(" ", cmd) + ": interrupted");
        }
        if (p.exitValue() != 0) {
            throw new IOException(String.join(" ", cmd) + ": exit " + p.exitValue() + ": " + out.trim());
        }
        return out;
    }

    /** Removes every namespace and link this run made (links first: a veth goes with its peer). */
    @Override
    public void close() {
        remove(tag);
        try {
            Files.deleteIfExists(MARKERS.resolve(tag));
        } catch (IOException ignored) {
            // the next run removes what it names
        }
    }

    /** Removes every namespace and host link whose name starts with this tag. */
    private static void remove(String tag) {
        try {
            for (String line : ip("-o", "link", "show").split("\n")) {
                String[] f = line.split(":\\s+", 3);
                if (f.length >= 2) {
                    String name = f[1].replaceFirst("@.*", "");
                    if (name.startsWith(tag)) {
                        quietly("link", "del", name);
                    }
                }
            }
            for (String line : ip("netns", "list").split("\n")) {
                String name = line.split("\\s+")[0];
                if (!name.isEmpty() && name.startsWith(tag)) {
                    quietly("netns", "del", name);
                }
            }
        } catch (IOException e) {
            System.err.println("namespace cleanup: " + e.getMessage());
        }
    }

    private static void quietly(String... args) {
        try {
            ip(args);
        } catch (IOException e) {
            System.err.println("namespace cleanup: " + e.getMessage());
        }
    }

    /** What runs that crashed before their cleanup left: their marker names a pid that is gone. */
    private static void removeLeftovers() throws IOException {
        if (!Files.isDirectory(MARKERS)) {
            return;
        }
        try (Stream<Path> markers = Files.list(MARKERS)) {
            for (Path m : markers.toList()) {
                long pid;
                try {
                    pid = Long.parseLong(Files.readString(m).trim());
                } catch (NumberFormatException e) {
                    pid = -1;
                }
                if (ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)) {
                    continue;
                }
                remove(m.getFileName().toString());
                Files.deleteIfExists(m);
            }
        }
    }
}
