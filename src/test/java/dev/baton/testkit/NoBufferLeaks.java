package dev.baton.testkit;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Fails a test class during which Netty reported a leaked buffer (registered for every class
 * through junit-platform.properties). A leak is reported once the garbage collector has taken the
 * forgotten buffer and another buffer is allocated, so at the end of a class this collects
 * garbage and allocates a few before it counts; a leak reported here may have begun in the class
 * that ran just before.
 */
public final class NoBufferLeaks implements BeforeAllCallback, AfterAllCallback {
    private static final ExtensionContext.Namespace NS = ExtensionContext.Namespace.create(NoBufferLeaks.class);

    @Override
    public void beforeAll(ExtensionContext context) {
        context.getStore(NS).put("reports", LeakReports.count());
    }

    @Override
    public void afterAll(ExtensionContext context) throws InterruptedException {
        surfaceLeaks();
        int before = context.getStore(NS).get("reports", Integer.class);
        assertEquals(before, LeakReports.count(), "Netty reported leaked buffers (the LEAK lines in the log above) "
                + "during " + context.getDisplayName());
    }

    /** Lets the detector see buffers that were dropped without release: collect, then allocate. */
    static void surfaceLeaks() throws InterruptedException {
        for (int i = 0; i < 3; i++) {
            System.gc();
            Thread.sleep(20);
            for (int j = 0; j < 4; j++) {
                ByteBuf b = PooledByteBufAllocator.DEFAULT.directBuffer(16);
                b.release();
            }
        }
    }
}
