package dev.baton.cli;

import dev.baton.Main;
import dev.baton.Version;
import dev.baton.config.BatonConfig;
import dev.baton.config.ConfigException;
import dev.baton.config.ConfigLoader;
import dev.baton.config.Protocol;
import dev.baton.control.ControlServer;
import dev.baton.daemon.Daemon;
import dev.baton.daemon.Mapper;
import dev.baton.daemon.PidFile;
import dev.baton.daemon.Signals;
import dev.baton.handoff.Predecessor;
import dev.baton.handoff.Successor;
import dev.baton.socket.ListenException;
import dev.baton.systemd.SocketActivation;
import dev.baton.systemd.Systemd;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicBoolean;

/** `baton run`: the daemon in the foreground, its signals, control socket and upgrades. */
public final class RunCommand implements Callable<Integer> {
    private static final Logger log = LoggerFactory.getLogger("baton");

    /** The configuration file: read at start and again on every reload. */
    private final Path path;
    private final Path pidFile;

    /** {@code pidFile}: where to keep the serving process's pid, or null. */
    public RunCommand(Path config, Path pidFile) {
        this.path = config;
        this.pidFile = pidFile;
    }

    private Daemon daemon;
    private Mapper mapper;
    private PidFile pid;
    private ControlServer control;
    private final AtomicBoolean upgrading = new AtomicBoolean();
    private final Systemd systemd = Systemd.fromEnvironment();
    private final CompletableFuture<Integer> exit = new CompletableFuture<>();
    /** Every lifecycle step runs on this one thread, in the order asked. */
    private final ExecutorService lifecycle = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "control");
        t.setDaemon(true);
        // Created from the JVM's signal thread, which has no context class loader; the
        // configuration library needs one.
        t.setContextClassLoader(RunCommand.class.getClassLoader());
        return t;
    });

    @Override
    public Integer call() throws Exception {
        Successor successor = Successor.fromEnvironment();
        BatonConfig c;
        try {
            c = ConfigLoader.load(path);
        } catch (ConfigException e) {
            e.errors().forEach(log::error);
            if (successor != null) {
                successor.fail("invalid configuration: " + e.errors().get(0));
            }
            return 1;
        }
        try {
            daemon = new Daemon(c);
        } catch (IllegalStateException e) {
            log.error("{}: baton.transport: {}", path, e.getMessage());
            if (successor != null) {
                successor.fail(e.getMessage());
            }
            return 1;
        }
        mapper = new Mapper(daemon);
        if (successor != null) {
            try {
                int n = successor.receiveListeners(daemon.registry());
                log.info("upgrade: received {} listening sockets from the predecessor", n);
            } catch (IOException | RuntimeException e) {
                log.error("upgrade: {}", e.getMessage());
                successor.fail(e.getMessage());
                daemon.workers().close();
                return 1;
            }
            daemon.registry().holdReads();
        }
        if (successor == null) {
            try {
                systemd.beforeStart(daemon); // socket activation: adopt the sockets systemd bound
            } catch (SocketActivation.ActivationException e) {
                log.error(e.getMessage());
                daemon.workers().close();
                return 1;
            }
        }
        try {
            daemon.start();
        } catch (ListenException e) {
            log.error(e.getMessage());
            if (successor != null) {
                successor.fail(e.getMessage());
            }
            daemon.workers().close();
            return 1;
        }
        if (successor != null) {
            Successor.closeUnclaimed(daemon.registry());
            try {
                successor.ready();
            } catch (IOException e) {
                log.error("upgrade: {}; exiting", e.getMessage());
                return 1;
            }
            // The predecessor stopped reading: read everything now. Datagrams of clients whose
            // flow is still on its way wait for it, so no flow is opened twice.
            daemon.deferNewUdpFlows();
            daemon.registry().startReading(Protocol.TCP);
            daemon.registry().startReading(Protocol.UDP);
        }
        // Handlers first: once the pid file names this process, a signal to it must not find the
        // default action (SIGHUP's would end it).
        Signals.on("TERM", () -> lifecycle.execute(this::stop));
        Signals.on("INT", () -> lifecycle.execute(this::stop));
        Signals.on("HUP", () -> lifecycle.execute(this::reload));
        Signals.on("USR2", () -> upgradeAsync(true));
        if (successor == null) {
            announce(c);
        } else {
            // A successor says it serves (pid file, MAINPID, control socket) once it holds the
            // state, before it confirms that: its predecessor exits only after the confirmation,
            // so the unit never looks stopped; and a successor that dies before it leaves its
            // predecessor serving under its own pid and control socket. An upgrade asked for
            // meanwhile (SIGUSR2) waits for the next request: this one is still under way.
            upgrading.set(true);
            try {
                successor.receiveState(daemon, daemon::openDeferredUdpFlows, () -> announce(c));
            } catch (IOException | RuntimeException e) {
                log.warn("upgrade: state handoff incomplete: {}", e.getMessage());
            } finally {
                upgrading.set(false);
            }
            announce(c); // the predecessor went away before it finished: this process serves anyway
            daemon.openDeferredUdpFlows();
            successor.close();
        }
        log.info("baton {} {} (pid {}, generation {}): {}", Version.get(), successor != null ? "took over" : "started",
                ProcessHandle.current().pid(), generation(), c.summary());

        return exit.get();
    }

    private boolean announced;

    /** Says this process serves: pid file, systemd (READY, MAINPID), control socket. Once. */
    private void announce(BatonConfig c) {
        if (announced) {
            return;
        }
        announced = true;
        if (pidFile != null) {
            pid = PidFile.write(pidFile);
        }
        systemd.started(daemon);
        startControlSocket(c);
    }

    private void startControlSocket(BatonConfig c) {
        try {
            control = ControlServer.start(c.controlSocket(), this::command, this::exitIfHandedOver);
        } catch (IOException | RuntimeException e) {
            log.warn("control socket {} unavailable ({}); use signals instead", c.controlSocket(), e.getMessage());
        }
    }

    /** Answers one control-socket command (on the control-socket thread; work runs on the lifecycle thread). */
    private String command(String line) {
        try {
            return switch (line) {
                case "reload" -> lifecycle.submit(this::reload).get();
                case "upgrade" -> upgradeAsync().get();
                case "status" -> status();
                default -> line.startsWith("map ") ? map(line)
                        : "FAIL unknown command '" + line + "' (reload, upgrade, status, map)\n";
            };
        } catch (Exception e) {
            return "FAIL " + e.getMessage() + "\n";
        }
    }

    /** `baton map add|rm|ls`, in turn with reloads and upgrades. */
    private String map(String line) throws Exception {
        return lifecycle.submit(() -> handedOver
                // The successor serves (and saves) the mappings now; it holds the control socket path.
                ? "FAIL this process has just handed over to its successor; run the command again\n"
                : mapper.handle(line)).get();
    }

    private String reload() {
        log.info("reloading {}", path);
        systemd.reloading();
        try {
            daemon.reload(ConfigLoader.load(path));
            systemd.reloaded(daemon, true);
            return "OK reloaded " + path + ": " + daemon.config().summary() + "\n";
        } catch (ConfigException e) {
            e.errors().forEach(log::error);
            log.error("reload rejected: the running configuration stays");
            systemd.reloaded(daemon, false);
            return "FAIL reload rejected, the running configuration stays:\n" + String.join("\n", e.errors()) + "\n";
        } catch (ListenException e) {
            log.error("reload rejected: {}; the running configuration stays", e.getMessage());
            systemd.reloaded(daemon, false);
            return "FAIL reload rejected: " + e.getMessage() + "; the running configuration stays\n";
        }
    }

    /** Starts an upgrade unless one is running; completes with the answer for `baton upgrade`. */
    private CompletableFuture<String> upgradeAsync() {
        return upgradeAsync(false);
    }

    private CompletableFuture<String> upgradeAsync(boolean bySignal) {
        if (!upgrading.compareAndSet(false, true)) {
            log.warn("upgrade already in progress; this request is ignored");
            return CompletableFuture.completedFuture("FAIL an upgrade is already in progress\n");
        }
        return CompletableFuture.supplyAsync(() -> {
            String answer = upgrade();
            if (bySignal) {
                exitIfHandedOver();
            }
            return answer;
        }, lifecycle);
    }

    private String upgrade() {
        try {
            log.info("upgrade: starting a successor");
            Predecessor.Outcome o = new Predecessor(daemon, successorCommand(), generation() + 1).upgrade();
            if (!o.handedOver()) {
                reclaim();
                systemd.upgradeFailed(daemon, o.message());
                return "FAIL " + o.message() + "\n";
            }
            // The successor serves everything now; leave without touching its sockets.
            if (control != null) {
                control.close(false);
            }
            log.info("upgrade: pid {} serves now; exiting", o.successorPid());
            handedOver = true;
            // Exit once `baton upgrade` has its answer; a signal-triggered upgrade has no one to tell.
            CompletableFuture.delayedExecutor(500, java.util.concurrent.TimeUnit.MILLISECONDS)
                    .execute(this::exitIfHandedOver);
            return "OK " + o.message() + "\n";
        } finally {
            upgrading.set(false);
        }
    }

    private volatile boolean handedOver;

    /**
     * After a failed upgrade: the pid file and the control socket name this process again,
     * whatever a successor that died in the handoff had done to them.
     */
    private void reclaim() {
        if (pid != null && !pid.current()) {
            log.warn("upgrade: the pid file named the failed successor; it names pid {} again", ProcessHandle.current().pid());
            pid = PidFile.write(pidFile);
        }
        if (control != null && !control.ownsPath()) {
            log.warn("upgrade: the failed successor had taken the control socket; taking it back");
            control.close(false);
            startControlSocket(daemon.config());
        }
    }

    /**
     * After a handoff nothing here owns anything: the successor holds every socket. Halt at once
     * (no shutdown hooks, no channel closing) so the predecessor is gone within milliseconds.
     */
    private void exitIfHandedOver() {
        if (handedOver) {
            System.out.flush();
            Runtime.getRuntime().halt(0);
        }
    }

    private void stop() {
        systemd.stopping(daemon);
        log.info("stopping: no new connections; draining for up to {}s", daemon.config().drainTimeout().toSeconds());
        if (control != null) {
            control.close(true);
        }
        daemon.stop();
        systemd.stopped();
        if (pid != null) {
            pid.remove();
        }
        log.info("stopped");
        exit.complete(0);
    }

    private String status() {
        StringBuilder b = new StringBuilder();
        b.append("pid ").append(ProcessHandle.current().pid()).append('\n');
        b.append("generation ").append(generation()).append('\n');
        b.append("transport ").append(daemon.transport().label()).append('\n');
        b.append("workers ").append(daemon.workers().count()).append('\n');
        b.append("connections ").append(daemon.connections().count()).append('\n');
        b.append("flows ").append(daemon.flowCount()).append('\n');
        daemon.proxyStatus().forEach(l -> b.append(l).append('\n'));
        return b.toString();
    }

    static int generation() {
        String g = System.getenv("BATON_GENERATION");
        try {
            return g == null ? 1 : Integer.parseInt(g);
        } catch (NumberFormatException e) {
            return 1;
        }
    }

    /** The successor runs the same command line through the launcher, which re-resolves lib/. */
    private static List<String> successorCommand() {
        List<String> cmd = new ArrayList<>();
        String launcher = System.getenv("BATON_LAUNCHER");
        if (launcher != null) {
            cmd.add(launcher);
        } else {
            ProcessHandle.Info info = ProcessHandle.current().info();
            cmd.add(info.command().orElse("java"));
            String[] jvmArgs = info.arguments().orElse(new String[0]);
            int main = List.of(jvmArgs).indexOf(Main.class.getName());
            for (int i = 0; i <= main; i++) {
                cmd.add(jvmArgs[i]);
            }
        }
        cmd.addAll(Main.arguments());
        return cmd;
    }
}
