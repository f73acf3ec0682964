package dev.baton.daemon;

import sun.misc.Signal;

/** POSIX signal handlers (HUP, USR2, TERM, INT) through the JDK's signal dispatcher. */
@SuppressWarnings("restriction")
public final class Signals {
    private Signals() {
    }

    /** Runs the action on the JDK's signal thread; keep it short (hand work to another thread). */
    public static void on(String name, Runnable action) {
        Signal.handle(new Signal(name), s -> action.run());
    }
}
