package dev.baton.metrics;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * Lets a warning that can repeat for every connection or datagram through at most once every
 * 10 s, and counts the occurrences it held back meanwhile (which callers log at debug level).
 * Safe from any thread.
 */
public final class Throttle {
    private static final long PERIOD = TimeUnit.SECONDS.toNanos(10);
    private final AtomicLong lastPassed = new AtomicLong(System.nanoTime() - PERIOD);
    private final LongAdder heldBack = new LongAdder();

    /** True if this occurrence is to be logged; false (and counted as held back) otherwise. */
    public boolean pass() {
        long now = System.nanoTime();
        long last = lastPassed.get();
        if (now - last >= PERIOD && lastPassed.compareAndSet(last, now)) {
            return true;
        }
        heldBack.increment();
        return false;
    }

    /** The occurrences held back since this was last asked; starts counting again from 0. */
    public long takeHeldBack() {
        return heldBack.sumThenReset();
    }
}
