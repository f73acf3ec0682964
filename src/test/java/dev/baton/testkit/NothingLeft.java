package dev.baton.testkit;

import dev.baton.tcp.TcpProxy;

import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** After a test's traffic: no connection of a proxy is left open, and no buffer leaked meanwhile. */
public final class NothingLeft {
    private final int leakReportsBefore = LeakReports.count();

    /** Takes the leak count now, before the traffic. */
    public NothingLeft() {
    }

    /** Waits up to 10 s for {@code proxy} to have no connection open, then checks for leaked buffers. */
    public void check(TcpProxy proxy) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (proxy.stats().active.get() > 0 && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertEquals(0, proxy.stats().active.get(), "connections left open after 10 s");
        NoBufferLeaks.surfaceLeaks();
        assertEquals(leakReportsBefore, LeakReports.count(), "leaked buffers");
    }
}
