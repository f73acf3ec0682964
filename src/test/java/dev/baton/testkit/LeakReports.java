package dev.baton.testkit;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.AppenderBase;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * Counts the buffer leaks Netty's leak detector reports (logback-test.xml attaches it to the
 * detector's logger). The tests run the detector at {@code paranoid}, every buffer tracked;
 * {@link NoBufferLeaks} fails a test class during which the count grew.
 */
public final class LeakReports extends AppenderBase<ILoggingEvent> {
    private static final AtomicInteger REPORTS = new AtomicInteger();

    public static int count() {
        return REPORTS.get();
    }

    /** For the test of this check only: takes back reports of leaks it made on purpose. */
    static void acknowledge(int reports) {
        REPORTS.addAndGet(-reports);
    }

    @Override
    protected void append(ILoggingEvent e) {
        if (e.getLevel().isGreaterOrEqual(Level.ERROR) && e.getFormattedMessage().startsWith("LEAK:")) {
            REPORTS.incrementAndGet();
        }
    }
}
