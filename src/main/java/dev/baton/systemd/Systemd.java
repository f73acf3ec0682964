package dev.baton.systemd;

import dev.baton.daemon.Daemon;

/**
 * The daemon's whole conversation with systemd, as the few hook calls the lifecycle makes:
 * socket activation before start, READY/MAINPID/STATUS after it, RELOADING ... READY around a
 * reload, STOPPING at stop, and the watchdog in between. Every call is harmless outside systemd.
 */
public final class Systemd {

    private final SdNotify notify;
    private Watchdog watchdog;

    private Systemd(SdNotify notify) {
        this.notify = notify;
    }

    public static Systemd fromEnvironment() {
        return new Systemd(SdNotify.fromEnvironment());
    }

    public SdNotify sdNotify() {
        return notify;
    }

    /** Before Daemon.start(): offers socket-activated fds to the registry. */
    public void beforeStart(Daemon daemon) throws SocketActivation.ActivationException {
        SocketActivation.offer(daemon.config(), daemon.registry());
    }

    /** After Daemon.start() succeeded: READY=1, MAINPID, STATUS; starts the watchdog. */
    public void started(Daemon daemon) {
        notify.ready(status(daemon, System.getenv("BATON_HANDOFF_FD") != null ? "upgrade: took over" : "started"));
        if (watchdog == null) {
            watchdog = Watchdog.startIfRequested(notify, daemon.workers().loops());
        }
    }

    /** A reload begins. */
    public void reloading() {
        notify.reloading("reloading");
    }

    /** A reload ended, applied or rejected: the daemon serves again either way. */
    public void reloaded(Daemon daemon, boolean applied) {
        notify.send("READY=1", "STATUS=" + status(daemon, applied ? "reload applied" : "reload rejected"));
    }

    /** An upgrade failed; the daemon serves on as before. */
    public void upgradeFailed(Daemon daemon, String why) {
        notify.mainPid(ProcessHandle.current().pid()); // in case a successor that died had said it was
        notify.status(status(daemon, "upgrade failed: " + why));
    }

    /** Stop begins: STOPPING=1. The watchdog keeps going while the workers drain. */
    public void stopping(Daemon daemon) {
        notify.stopping("draining for up to " + daemon.config().drainTimeout().toSeconds() + "s");
    }

    /** The workers are gone: no more watchdog rounds. */
    public void stopped() {
        if (watchdog != null) {
            watchdog.close();
            watchdog = null;
        }
    }

    /** STATUS=: generation, what is open, and the last lifecycle outcome. */
    private static String status(Daemon daemon, String last) {
        String g = System.getenv("BATON_GENERATION");
        return "generation " + (g == null ? "1" : g) + ", " + daemon.connections().count() + " connections, "
                + daemon.flowCount() + " flows; last: " + last + "; " + daemon.config().summary();
    }

}
