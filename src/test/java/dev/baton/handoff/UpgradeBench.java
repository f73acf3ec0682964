package dev.baton.handoff;

import java.io.IOException;
import java.net.Socket;
import java.net.SocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * bench/upgrade: the same upgrade storm against baton, HAProxy (-W, USR2 to the master) and nginx
 * stream (USR2, then QUIT to the old master), one after the other on this machine; prints one table.
 * Not a test: run it through bench/upgrade.
 */
public final class UpgradeBench {
    private static final long EXIT_CAP_MS = 10_000;

    private UpgradeBench() {
    }

    record Row(String proxy, long shortOk, long shortFailed, long streamsBroken, String udpLost, String udpRemapped,
               String ready, String predecessorGone, String notes) {
    }

    public static void main(String[] args) throws Exception {
        int upgrades = 20;
        List<String> proxies = List.of("baton", "haproxy", "nginx");
        Path out = null;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--upgrades" -> upgrades = Integer.parseInt(args[++i]);
                case "--proxies" -> proxies = List.of(args[++i].split(","));
                case "--markdown" -> out = Path.of(args[++i]);
                default -> throw new IllegalArgumentException("unknown argument " + args[i]);
            }
        }
        List<Row> rows = new ArrayList<>();
        for (String p : proxies) {
            System.err.printf("== %s: %d upgrades under load%n", p, upgrades);
            rows.add(run(p, upgrades));
        }
        String table = table(rows, upgrades);
        System.out.println(table);
        if (out != null) {
            Files.writeString(out, table);
        }
        System.exit(0);
    }

    private static Row run(String kind, int upgrades) throws Exception {
        Path dir = Files.createTempDirectory("bench-" + kind);
        try (Loads.TcpEcho echo = new Loads.TcpEcho(); Loads.UdpEcho udpEcho = new Loads.UdpEcho()) {
            int tcp = UpgradeIT.freePort();
            int udp = UpgradeIT.freePort();
            Proxy proxy = switch (kind) {
                case "baton" -> new Baton(dir, tcp, echo.port(), udp, udpEcho.port());
                case "haproxy" -> new HaProxy(dir, tcp, echo.port());
                case "nginx" -> new Nginx(dir, tcp, echo.port(), udp, udpEcho.port());
                default -> throw new IllegalArgumentException(kind);
            };
            try {
                awaitPort(tcp);
                Loads.ShortConnections shortConns = new Loads.ShortConnections(tcp, 2);
                Loads.Streams streams = new Loads.Streams(tcp, 50);
                Loads.UdpFlows flows = proxy.udp() ? new Loads.UdpFlows(udp, 20, 2000) : null;
                Thread.sleep(1000);
                List<Long> ready = new ArrayList<>();
                ExitWatch exits = new ExitWatch();
                String notes = "";
                for (int i = 0; i < upgrades; i++) {
                    Set<Long> before = proxy.servingPids();
                    long t0 = System.nanoTime();
                    String problem = proxy.upgrade();
                    long readyMs = problem != null ? -1 : proxy.awaitSuccessorReady(before, 30_000);
                    if (readyMs < 0) {
                        notes = "upgrade " + (i + 1) + " of " + upgrades + " failed: "
                                + (problem != null ? problem : "no successor within 30 s") + "; stopped there";
                        break;
                    }
                    ready.add(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0));
                    exits.watch(before, System.nanoTime());
                    System.err.printf("  upgrade %d: serving %s -> %s%n", i + 1, before, proxy.servingPids());
                    Thread.sleep(2000);
                }
                Thread.sleep(1000);
                // Judged now, while the load still runs: a predecessor that only leaves once its
                // clients do is still there at this point.
                String gone = exits.summary();
                shortConns.close();
                streams.close();
                if (flows != null) {
                    flows.close();
                }
                exits.stop();
                String lost = flows == null ? "n/a (no UDP proxy)" : Long.toString(flows.lost());
                String remapped = flows == null ? "n/a" : Long.toString(remapped(udpEcho));
                ready.sort(null);
                String readyText = ready.isEmpty() ? "-" : String.format(Locale.ROOT, "%d ms median, %d max",
                        ready.get(ready.size() / 2), ready.get(ready.size() - 1));
                return new Row(kind, shortConns.ok.get(), shortConns.failed.get(), streams.broken.get(), lost,
                        remapped, readyText, gone, notes);
            } finally {
                proxy.close();
            }
        }
    }

    private static long remapped(Loads.UdpEcho echo) {
        long n = 0;
        for (Set<SocketAddress> s : echo.sources.values()) {
            if (s.size() > 1) {
                n++;
            }
        }
        return n;
    }

    private static String table(List<Row> rows, int upgrades) {
        StringBuilder b = new StringBuilder();
        b.append(String.format("%d upgrades per proxy; load: short TCP connections from 2 clients, 50 long-lived "
                + "checksummed streams, 20 UDP flows at 2,000 datagrams/s in total.%n%n", upgrades));
        b.append("| proxy | short TCP ok | short TCP failed | streams broken | UDP datagrams lost | UDP flows re-mapped "
                + "| signal to successor ready | predecessor gone after ready | notes |\n");
        b.append("|---|---|---|---|---|---|---|---|---|\n");
        for (Row r : rows) {
            b.append(String.format("| %s | %d | %d | %d | %s | %s | %s | %s | %s |%n", r.proxy, r.shortOk,
                    r.shortFailed, r.streamsBroken, r.udpLost, r.udpRemapped, r.ready, r.predecessorGone, r.notes));
        }
        return b.toString();
    }

    private static void awaitPort(int port) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (true) {
            try (Socket s = new Socket("127.0.0.1", port)) {
                return;
            } catch (IOException e) {
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("proxy did not listen on " + port);
                }
                Thread.sleep(50);
            }
        }
    }

    /** Records when each predecessor process is gone, measured from its successor's readiness. */
    static final class ExitWatch {
        private final List<Long> gone = new ArrayList<>();
        private final ConcurrentHashMap<Long, Long> pending = new ConcurrentHashMap<>();
        private volatile boolean running = true;
        private final Thread thread;

        ExitWatch() {
            thread = new Thread(() -> {
                while (running) {
                    long now = System.nanoTime();
                    for (var e : pending.entrySet()) {
                        if (!BatonProcess.alive(e.getKey())) {
                            synchronized (gone) {
                                gone.add(TimeUnit.NANOSECONDS.toMillis(now - e.getValue()));
                            }
                            pending.remove(e.getKey());
                        }
                    }
                    try {
                        Thread.sleep(5);
                    } catch (InterruptedException ex) {
                        return;
                    }
                }
            }, "exit-watch");
            thread.setDaemon(true);
            thread.start();
        }

        void watch(Set<Long> pids, long since) {
            for (long p : pids) {
                pending.putIfAbsent(p, since);
            }
        }

        void stop() throws InterruptedException {
            running = false;
            thread.join();
        }

        String summary() {
            long now = System.nanoTime();
            long lingering = pending.values().stream().filter(t -> now - t > TimeUnit.MILLISECONDS.toNanos(EXIT_CAP_MS))
                    .count();
            synchronized (gone) {
                List<Long> g = new ArrayList<>(gone);
                g.sort(null);
                String done = g.isEmpty() ? "none gone" : String.format(Locale.ROOT, "%d ms median, %d max",
                        g.get(g.size() / 2), g.get(g.size() - 1));
                return pending.isEmpty() ? done
                        : done + "; " + pending.size() + " old process(es) still running at the end of the storm"
                        + (lingering > 0 ? " (" + lingering + " of them for > 10 s)" : "");
            }
        }
    }

    /** One proxy under test. */
    interface Proxy extends AutoCloseable {
        boolean udp();

        /** The processes that serve now (for HAProxy and nginx, the worker processes). */
        Set<Long> servingPids() throws IOException;

        /** Sends the upgrade; returns a note if the proxy refused it. */
        String upgrade() throws Exception;

        /** Waits until a new set of serving processes exists; ms or -1. */
        default long awaitSuccessorReady(Set<Long> before, long timeoutMs) throws Exception {
            long start = System.nanoTime();
            while (System.nanoTime() - start < TimeUnit.MILLISECONDS.toNanos(timeoutMs)) {
                Set<Long> now = servingPids();
                if (!now.isEmpty() && !before.containsAll(now) && ready()) {
                    return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
                }
                Thread.sleep(5);
            }
            return -1;
        }

        default boolean ready() throws Exception {
            return true;
        }
    }

    static long readPid(Path file) {
        try {
            return Long.parseLong(Files.readString(file).trim());
        } catch (IOException | NumberFormatException e) {
            return -1;
        }
    }

    static Set<Long> children(long pid) {
        Set<Long> out = new HashSet<>();
        try {
            for (String s : Files.readString(Path.of("/proc/" + pid + "/task/" + pid + "/children")).trim().split("\\s+")) {
                if (!s.isEmpty() && BatonProcess.alive(Long.parseLong(s))) {
                    out.add(Long.parseLong(s));
                }
            }
        } catch (IOException ignored) {
            // gone
        }
        return out;
    }

    static void kill(long pid, String sig) throws Exception {
        new ProcessBuilder("kill", "-" + sig, Long.toString(pid)).inheritIO().start().waitFor();
    }

    static final class Baton implements Proxy {
        final BatonProcess process;

        Baton(Path dir, int tcp, int echo, int udp, int udpEcho) throws Exception {
            String conf = "baton {\n  workers = 2\n  drain-timeout = 5s\n  control-socket = \"" + dir.resolve("ctl.sock")
                    + "\"\n  proxies {\n    web { listen = \"127.0.0.1:" + tcp + "\", upstreams = \"127.0.0.1:" + echo
                    + "\" }\n    game { protocol = udp, listen = \"127.0.0.1:" + udp + "\", upstreams = \"127.0.0.1:"
                    + udpEcho + "\" }\n  }\n}\n";
            process = new BatonProcess(BatonProcess.distribution().resolve("bin/baton"), dir, conf);
        }

        public boolean udp() {
            return true;
        }

        public Set<Long> servingPids() {
            long p = process.pid();
            return p > 0 ? Set.of(p) : Set.of();
        }

        public String upgrade() throws Exception {
            kill(process.pid(), "USR2");
            return null;
        }

        public void close() throws Exception {
            process.close();
        }
    }

    static final class HaProxy implements Proxy {
        final Process master;

        HaProxy(Path dir, int tcp, int echo) throws Exception {
            Path cfg = dir.resolve("haproxy.cfg");
            Files.writeString(cfg, "global\n  maxconn 8000\n  nbthread 2\n\ndefaults\n  mode tcp\n  timeout connect 5s\n"
                    + "  timeout client 1h\n  timeout server 1h\n\nfrontend f\n  bind 127.0.0.1:" + tcp + "\n"
                    + "  default_backend b\n\nbackend b\n  server s1 127.0.0.1:" + echo + "\n");
            master = new ProcessBuilder("/usr/sbin/haproxy", "-W", "-db", "-f", cfg.toString())
                    .redirectErrorStream(true).redirectOutput(dir.resolve("haproxy.log").toFile()).start();
        }

        public boolean udp() {
            return false;
        }

        public Set<Long> servingPids() {
            return children(master.pid());
        }

        public String upgrade() throws Exception {
            kill(master.pid(), "USR2");
            return null;
        }

        public void close() throws Exception {
            master.destroy();
            if (!master.waitFor(10, TimeUnit.SECONDS)) {
                master.destroyForcibly();
            }
            for (long c : children(master.pid())) {
                kill(c, "KILL");
            }
        }
    }

    static final class Nginx implements Proxy {
        final Path dir;
        final Path pidFile;
        final Path cfg;
        private long master;

        Nginx(Path dir, int tcp, int echo, int udp, int udpEcho) throws Exception {
            this.dir = dir;
            this.pidFile = dir.resolve("nginx.pid");
            this.cfg = dir.resolve("nginx.conf");
            String module = Files.exists(Path.of("/usr/lib/nginx/modules/ngx_stream_module.so"))
                    ? "load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n" : "";
            Files.writeString(cfg, module + "worker_processes 2;\npid " + pidFile + ";\nerror_log " + dir.resolve("error.log")
                    + " notice;\nevents { worker_connections 8192; }\nstream {\n"
                    + "  server { listen 127.0.0.1:" + tcp + " reuseport; proxy_pass 127.0.0.1:" + echo
                    + "; proxy_timeout 1h; }\n"
                    + "  server { listen 127.0.0.1:" + udp + " udp reuseport; proxy_pass 127.0.0.1:" + udpEcho
                    + "; proxy_timeout 60s; }\n}\n");
            Process p = new ProcessBuilder("/usr/sbin/nginx", "-c", cfg.toString(), "-p", dir.toString())
                    .redirectErrorStream(true).redirectOutput(dir.resolve("start.log").toFile()).start();
            p.waitFor(10, TimeUnit.SECONDS);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while ((master = readPid(pidFile)) <= 0 && System.nanoTime() < deadline) {
                Thread.sleep(20);
            }
        }

        public boolean udp() {
            return true;
        }

        public Set<Long> servingPids() {
            long m = readPid(pidFile);
            return m > 0 ? children(m) : Set.of();
        }

        public String upgrade() throws Exception {
            long old = readPid(pidFile);
            kill(old, "USR2");
            // The new master writes the pid file; then the old master is told to quit gracefully.
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            long now;
            while (((now = readPid(pidFile)) == old || now <= 0) && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            if (now == old) {
                String log = Files.exists(dir.resolve("error.log")) ? Files.readString(dir.resolve("error.log")) : "";
                return log.contains("ignored") ? "nginx ignored USR2 (\"the changing binary signal is ignored\")"
                        : "nginx started no new master";
            }
            while (children(now).isEmpty() && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            kill(old, "QUIT");
            master = now;
            return null;
        }

        public void close() throws Exception {
            long m = readPid(pidFile);
            for (long p : new long[] {m, master}) {
                if (p > 0) {
                    kill(p, "TERM");
                }
            }
            Thread.sleep(1000);
            new ProcessBuilder("pkill", "-KILL", "-f", cfg.toString()).start().waitFor();
        }
    }
}
