package dev.baton.cli;

import dev.baton.Version;
import dev.baton.config.BatonConfig;
import dev.baton.config.ConfigException;
import dev.baton.config.ConfigLoader;
import dev.baton.daemon.Daemon;
import dev.baton.daemon.PidFile;
import dev.baton.daemon.Signals;
import dev.baton.socket.ListenException;
import dev.baton.systemd.SocketActivation;
import dev.baton.systemd.Systemd;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

@Command(name = "run", mixinStandardHelpOptions = true,
        description = "Run in the foreground. SIGHUP reloads the configuration; SIGTERM/SIGINT drain and stop.")
public final class RunCommand implements Callable<Integer> {
    private static final Logger log = LoggerFactory.getLogger("baton");

    @Mixin
    ConfigOption config;

    @Option(names = "--pid-file", paramLabel = "FILE",
            description = "Write the pid of the serving process here (removed on stop).")
    Path pidFile;

    @Override
    public Integer call() throws Exception {
        Path path = config.path();
        BatonConfig c;
        try {
            c = ConfigLoader.load(path);
        } catch (ConfigException e) {
            e.errors().forEach(log::error);
            return 1;
        }
        Daemon daemon;
        try {
            daemon = new Daemon(c);
        } catch (IllegalStateException e) {
            log.error("{}: baton.transport: {}", path, e.getMessage());
            return 1;
        }
        Systemd systemd = Systemd.fromEnvironment(); // systemd hook: socket activation
        try {
            systemd.beforeStart(daemon);
        } catch (SocketActivation.ActivationException e) {
            log.error(e.getMessage());
            daemon.workers().close();
            return 1;
        }
        try {
            daemon.start();
        } catch (ListenException e) {
            log.error(e.getMessage());
            daemon.workers().close();
            return 1;
        }
        PidFile pid = pidFile != null ? PidFile.write(pidFile) : null;
        log.info("baton {} started (pid {}): {}", Version.get(), ProcessHandle.current().pid(), c.summary());
        systemd.started(daemon); // systemd hook: READY=1, MAINPID, STATUS, watchdog

        CountDownLatch stopped = new CountDownLatch(1);
        // Every lifecycle step runs on this one thread, in the order the signals came.
        ExecutorService control = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "control");
            // Made on the first signal, by the JVM's signal thread, whose context class loader is
            // null; typesafe-config needs one to load the configuration on reload.
            t.setContextClassLoader(RunCommand.class.getClassLoader());
            t.setDaemon(true);
            return t;
        });
        Runnable stop = () -> {
            log.info("stopping: no new connections; draining for up to {}s",
                    daemon.config().drainTimeout().toSeconds());
            systemd.stopping(daemon); // systemd hook: STOPPING=1
            daemon.stop();
            systemd.stopped();
            if (pid != null) {
                pid.remove();
            }
            log.info("stopped");
            stopped.countDown();
        };
        Signals.on("TERM", () -> control.execute(stop));
        Signals.on("INT", () -> control.execute(stop));
        Signals.on("HUP", () -> control.execute(() -> {
            systemd.reloading(); // systemd hook: RELOADING=1 ... READY=1
            systemd.reloaded(daemon, reload(daemon, path));
        }));
        stopped.await();
        return 0;
    }

    private static boolean reload(Daemon daemon, Path path) {
        log.info("reloading {}", path);
        try {
            daemon.reload(ConfigLoader.load(path));
        } catch (ConfigException e) {
            e.errors().forEach(log::error);
            log.error("reload rejected: the running configuration stays");
            return false;
        } catch (ListenException e) {
            log.error("reload rejected: {}; the running configuration stays", e.getMessage());
            return false;
        }
        return true;
    }
}
