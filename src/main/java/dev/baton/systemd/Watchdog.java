package dev.baton.systemd;

import io.netty.channel.EventLoop;
import io.netty.util.concurrent.ScheduledFuture;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Keeps systemd's watchdog fed while every worker event loop is alive. Every WATCHDOG_USEC/2 the
 * first loop starts a round: it hands a tiny task to each loop, and the loop that runs the last
 * of them sends WATCHDOG=1. A loop that is stuck never runs its task, the round never completes,
 * the pings stop and systemd restarts the service.
 */
public final class Watchdog implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(Watchdog.class);

    private final ScheduledFuture<?> timer;

    private Watchdog(ScheduledFuture<?> timer) {
        this.timer = timer;
    }

    /** The watchdog interval asked of this process, in microseconds, or 0 when none is. */
    public static long intervalMicros() {
        String usec = System.getenv("WATCHDOG_USEC");
        if (usec == null || usec.isEmpty()) {
            return 0;
        }
        String pid = System.getenv("WATCHDOG_PID");
        if (pid != null && !pid.isEmpty() && !pid.equals(Long.toString(ProcessHandle.current().pid()))) {
            return 0; // meant for another process (our parent, say)
        }
        try {
            long v = Long.parseLong(usec.trim());
            return v > 0 ? v : 0;
        } catch (NumberFormatException e) {
            log.warn("WATCHDOG_USEC={}: not a number; no watchdog pings", usec);
            return 0;
        }
    }

    /** Starts pinging when systemd asked for it; returns null when it did not. */
    public static Watchdog startIfRequested(SdNotify notify, List<EventLoop> loops) {
        long usec = intervalMicros();
        if (usec == 0 || !notify.enabled() || loops.isEmpty()) {
            return null;
        }
        Watchdog w = start(notify, loops, usec / 2);
        log.info("systemd watchdog: pinging every {} ms while all {} workers respond", usec / 2000, loops.size());
        return w;
    }

    /** Starts a round every periodMicros on the first loop; visible for tests. */
    public static Watchdog start(SdNotify notify, List<EventLoop> loops, long periodMicros) {
        List<EventLoop> all = List.copyOf(loops);
        long period = Math.max(1, periodMicros);
        // One round may still be open when the next starts (a slow loop): each round counts alone.
        Runnable round = () -> {
            AtomicInteger left = new AtomicInteger(all.size());
            for (EventLoop loop : all) {
                loop.execute(() -> {
                    if (left.decrementAndGet() == 0) {
                        notify.watchdog();
                    }
                });
            }
        };
        ScheduledFuture<?> timer = all.get(0).scheduleAtFixedRate(round, 0, period, TimeUnit.MICROSECONDS);
        return new Watchdog(timer);
    }

    @Override
    public void close() {
        timer.cancel(false);
    }
}
