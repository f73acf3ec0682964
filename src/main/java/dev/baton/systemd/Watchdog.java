package dev.baton.systemd;

import io.netty.channel.EventLoop;

import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * systemd's watchdog: WATCHDOG=1 every half period, but only while every worker loop keeps
 * running the small task it is given each period. A stuck loop stops the pings and systemd
 * restarts the service.
 */
public final class Watchdog {
    private Watchdog() {
    }

    /** Starts pinging if systemd asked for it (WATCHDOG_USEC set for this pid); returns whether it did. */
    public static boolean start(SdNotify notify, List<EventLoop> loops) {
        String usec = System.getenv("WATCHDOG_USEC");
        String pid = System.getenv("WATCHDOG_PID");
        if (notify == null || usec == null) {
            return false;
        }
        if (pid != null && !pid.equals(Long.toString(ProcessHandle.current().pid()))
                && System.getenv("BATON_HANDOFF_FD") == null) {
            return false;
        }
        long periodMs = Math.max(100, Long.parseLong(usec) / 1000 / 2);
        AtomicLongArray beats = new AtomicLongArray(loops.size());
        long[] seen = new long[loops.size()];
        ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "watchdog");
            t.setDaemon(true);
            return t;
        });
        timer.scheduleAtFixedRate(() -> {
            boolean allRan = true;
            for (int i = 0; i < loops.size(); i++) {
                long b = beats.get(i);
                allRan &= b != seen[i];
                seen[i] = b;
                int index = i;
                loops.get(i).execute(() -> beats.incrementAndGet(index));
            }
            if (allRan) {
                notify.send("WATCHDOG=1");
            }
        }, periodMs, periodMs, TimeUnit.MILLISECONDS);
        // The first round has no beats yet: ping once so the first period is covered.
        notify.send("WATCHDOG=1");
        return true;
    }
}
