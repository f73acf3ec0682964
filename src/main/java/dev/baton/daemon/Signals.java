package dev.baton.daemon;

import dev.baton.os.SignalDisposition;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import sun.misc.Signal;

/** POSIX signal handlers (HUP, USR2, TERM, INT) through the JDK's signal dispatcher. */
@SuppressWarnings("restriction")
public final class Signals {
    private static final Logger log = LoggerFactory.getLogger(Signals.class);

    private Signals() {
    }

    /**
     * Runs the action on the JDK's signal thread; keep it short (hand work to another thread).
     * A signal the parent made this process ignore is put back to its default first: the JVM
     * would otherwise keep ignoring HUP, INT and TERM and never call the action.
     */
    public static void on(String name, Runnable action) {
        Signal signal = new Signal(name);
        if (SignalDisposition.ignored(signal.getNumber())) {
            if (SignalDisposition.reset(signal.getNumber())) {
                log.info("SIG{} was ignored (inherited from the parent, as under nohup); baton handles it", name);
            } else {
                log.warn("SIG{} is ignored (inherited from the parent) and cannot be reset; it will do nothing", name);
            }
        }
        Signal.handle(signal, s -> action.run());
    }
}
